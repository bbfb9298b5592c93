"""Who is online and in which room on every node: the interface, one process's, Redis's."""
