from tests.cli.conftest import one_torch_thread  # noqa: F401  (the tiny models run best on one thread)
