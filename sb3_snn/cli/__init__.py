"""The ``sb3-snn`` command line: one module per command (see :mod:`sb3_snn.cli.main`)."""
