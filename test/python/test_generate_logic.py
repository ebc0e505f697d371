"""generate()/stream() over a scripted session: the end-of-text token, characters split across
tokens, stop strings split across tokens and held back, the context filling up."""
import pytest

import kiln
from kiln.session import Generator
from conftest import MODEL

TOK = kiln.Tokenizer(MODEL)
BYTE = {TOK.decode_bytes([i]): i for i in range(256)}  # GPT-2's first 256 ids are the single bytes
EOS = 50256


class ScriptedSession:
    def __init__(self, script, ctx):
        self.script, self.ctx, self.pos, self.fed = list(script), ctx, 0, []

    def reset(self):
        self.pos, self.fed = 0, []

    def prefill(self, ids):
        self.pos += len(ids)

    def decode(self, token):
        self.fed.append(token)
        self.pos += 1

    @property
    def position(self):
        return self.pos

    def sample(self, *sampling):
        return self.script.pop(0)


class Scripted(Generator):
    def __init__(self, script, ctx=64):
        self.tokenizer, self.eos_token_id, self.context_length = TOK, EOS, ctx
        self.s = ScriptedSession(script, ctx)

    def _ptr(self):
        return 1

    def session(self):
        return self.s


def ids_of(text):
    return TOK.encode(text)


def test_end_of_text_stops_unless_ignored():
    script = ids_of(" Amen") + [EOS] + ids_of(" more")
    r = Scripted(script).generate("In", max_tokens=10)
    assert (r.text, r.ids, r.finish_reason) == (" Amen", ids_of(" Amen"), "stop")
    r = Scripted(script).generate("In", max_tokens=len(script), ignore_eos=True)
    assert r.ids == script and r.finish_reason == "length"


def test_a_character_split_over_tokens_is_never_split_in_pieces():
    e_acute, snowman = "é".encode(), "☃".encode()
    script = [BYTE[e_acute[:1]], BYTE[e_acute[1:]], BYTE[snowman[:1]], BYTE[snowman[1:2]], BYTE[snowman[2:]]]
    st = Scripted(script + ids_of("!")).stream("In", max_tokens=6)
    pieces = list(st)
    assert pieces == ["é", "☃", "!"] and st.result.text == "é☃!"


def test_an_unfinished_character_at_the_end_is_a_replacement_character():
    r = Scripted([BYTE["é".encode()[:1]]]).generate("In", max_tokens=1)
    assert r.text == "\ufffd" and r.finish_reason == "length"


def test_stop_string_across_tokens_is_held_back_then_cut():
    script = ids_of(" and the") + ids_of(" LO") + ids_of("RD said")
    st = Scripted(script).stream("In", max_tokens=len(script), stop=["LORD"])
    pieces = list(st)
    assert "".join(pieces) == " and the " and st.result.finish_reason == "stop"
    assert all("LO" not in p for p in pieces)
    # A held-back prefix that does not complete is released.
    st = Scripted(ids_of(" LO") + ids_of("ST")).stream("In", max_tokens=2, stop="LORD")
    assert "".join(st) == " LOST" and st.result.finish_reason == "length"


def test_generation_stops_when_the_context_is_full():
    m = Scripted(ids_of(" a b c d e f g h"), ctx=6)
    r = m.generate([1, 2, 3, 4], max_tokens=8)
    assert len(r.ids) == 3 and r.finish_reason == "length"  # positions 4 and 5 fed, then full
    assert m.s.fed == r.ids[:2]


def test_bad_arguments():
    m = Scripted([])
    for kwargs, match in [({"max_tokens": -1}, "max_tokens"), ({"stop": [""]}, "stop")]:
        with pytest.raises(kiln.Error, match=match):
            m.generate("In", **kwargs)
    with pytest.raises(kiln.Error, match="flat list"):
        m.generate([[1, 2]])
    with pytest.raises(kiln.Error, match="integers"):
        m.generate(["a"])
