"""The fork server's first preload: collection paused until :mod:`.preload` has imported
everything, which is then frozen for every worker forked (:mod:`alignprep.gcpause`)."""

from ..gcpause import own_process, pause

own_process()
pause()
