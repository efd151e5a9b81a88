"""One module per `hieramp` subcommand, each with `add_parser(subparsers)` and `run(args)`."""
