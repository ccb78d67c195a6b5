"""Pure queue logic: no I/O, no framework. The server and the simulator run this same code."""
