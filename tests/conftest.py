import pytest

from tests.helpers import ServerThread, make_settings
from tokenwire import Client


@pytest.fixture(scope="session")
def server():
    """The real server with the embedded SmolLM2 model, shared by the integration tests."""
    running = ServerThread(make_settings()).start()
    yield running
    running.stop()


@pytest.fixture
def client(server):
    with Client(server.target, timeout=60) as c:
        yield c


# SmolLM2-135M answers this question greedily with "Paris" when told to be brief; under its default
# system prompt it drifts into French prose instead (same tokens as llama-cpp-python's own chat).
CAPITAL_QUESTION = [{"role": "system", "content": "Answer in one word."},
                    {"role": "user", "content": "What is the capital of France?"}]

# SmolLM2's end-of-generation tokens (<|endoftext|>, <|im_end|>, <|im_start|>). Banning them makes
# the model write until max_tokens, for tests that need a long or exact-length generation.
BAN_END_OF_GENERATION = {0: -100.0, 2: -100.0, 4: -100.0}
