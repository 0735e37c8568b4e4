"""`python -m maas.cli` runs the `maas` command."""

from maas.cli.main import main

main()
