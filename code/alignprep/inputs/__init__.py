"""Read and validate what is in the data root; never write."""
