import pytest

from harness import MotoServer


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def endpoint(moto):
    """A fresh moto state for each test."""
    moto.reset()
    return moto.endpoint
