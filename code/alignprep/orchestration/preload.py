"""Imported by the process pool's fork server: every stage and the libraries they use, once.

Each worker is then forked from the server with all of it imported, instead of importing it
again (seconds of CPU per worker). ANTs's compiled library is not loaded here (the stages load
it on first use, in the worker): ITK's threads must not exist in a process that forks.
"""

from .tasks import warm_up

# ITK keeps its default (a thread per core) in every worker: measured on the demo with two
# workers on 2 cores, one ITK thread per worker made the run 12% slower (a worker's warp then
# cannot use the core the other worker leaves idle).
warm_up()
