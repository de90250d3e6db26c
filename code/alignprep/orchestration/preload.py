"""Imported by the process pool's fork server: every stage and the libraries they use, once.

Each worker is then forked from the server with all of it imported, instead of importing it
again (seconds of CPU per worker). No thread is started here: threads must not exist in a
process that forks (the stages start their own, a thread per core, in the worker).
"""

from .tasks import warm_up

warm_up()
