"""DeltaAssembler: whole UTF-8 characters only, and never any part of a stop sequence."""

from server.core.text import DeltaAssembler


def _feed(assembler, pieces):
    out = []
    for i, piece in enumerate(pieces):
        released = assembler.push(i, piece)
        if released:
            out.append(released)
    return out


def test_multibyte_character_split_across_tokens_is_held_until_complete():
    smile = "😀".encode()
    a = DeltaAssembler()
    out = _feed(a, [b"hi ", smile[:2], smile[2:3], smile[3:] + b"!"])
    assert [r.text for r in out] == ["hi ", "😀!"]
    assert out[1].token_ids == (1, 2, 3)


def test_invalid_bytes_become_replacement_characters_at_the_end():
    a = DeltaAssembler()
    assert _feed(a, [b"ok", b"\xf0\x9f"]) [0].text == "ok"
    assert a.flush().text == "\ufffd"


def test_stop_sequence_across_tokens_is_cut_and_never_leaked():
    a = DeltaAssembler(("END",))
    out = _feed(a, [b"alpha E", b"N", b"D omega"])
    assert "".join(r.text for r in out) == "alpha "
    assert a.stopped
    assert a.flush() is None


def test_held_text_is_released_once_it_cannot_be_a_stop():
    a = DeltaAssembler(("END",))
    out = _feed(a, [b"alpha E", b"NX"])
    assert "".join(r.text for r in out) == "alpha ENX"
    assert not a.stopped


def test_earliest_of_several_stop_sequences_wins():
    a = DeltaAssembler(("world", "lo w"))
    out = _feed(a, [b"hello world"])
    assert "".join(r.text for r in out) == "hel"


def test_flush_releases_a_held_stop_prefix_at_the_end():
    a = DeltaAssembler(("###",))
    out = _feed(a, [b"text #", b"#"])
    assert "".join(r.text for r in out) == "text "
    tail = a.flush()
    assert tail.text == "##" and tail.token_ids == (0, 1)
