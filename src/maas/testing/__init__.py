"""Public test kit: run a real maas server in-process on free loopback ports, for users' tests and ours."""
