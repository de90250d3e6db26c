"""Pure geometry: frames, orientation codes, ANTs chains, CCF <-> bregma."""
