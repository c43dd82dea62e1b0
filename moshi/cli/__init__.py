"""The `moshi` command line: one module per subcommand, sharing model selection flags."""
