"""``python -m sb3_snn`` runs the ``sb3-snn`` command line."""

from sb3_snn.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
