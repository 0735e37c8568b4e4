"""`python -m maas.cli` runs the `maas` command."""

from maas.cli.main import app

app(prog_name="maas")
