"""Messages out: stored then announced, the cluster's channels, broker deliveries to sockets."""
