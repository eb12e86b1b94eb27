"""Laws of Conduit's algebra: composition, identity, no-op identity, and purity."""

import copy

from hypothesis import given
from hypothesis import strategies as st
from toolz import compose_left, identity

import conduit as c
from tests.strategies import messages, requests, responses, texts

transforms = st.sampled_from(
    [
        c.set_model("large"),
        c.set_model("small"),
        c.set_options({"temperature": 0}),
        c.set_options({"max_tokens": 9, "seed": 3}),
        c.add_message(c.user("more")),
        c.add_message(c.assistant("ok")),
        c.with_middleware(c.on_request(identity, name="id")),
    ]
)


@given(requests, transforms, transforms, transforms)
def test_composition_is_associative(req, f, g, h):
    assert compose_left(compose_left(f, g), h)(req) == compose_left(f, compose_left(g, h))(req)


@given(requests, transforms)
def test_identity_is_neutral(req, f):
    assert compose_left(identity, f)(req) == f(req) == compose_left(f, identity)(req)


@given(requests)
def test_no_op_transforms_return_the_identical_object(req):
    assert c.set_model(req["model"])(req) is req
    assert c.set_options(dict(req["options"]))(req) is req
    assert c.freeze(req) is req


@given(requests, transforms)
def test_transforms_do_not_mutate_their_input(req, f):
    before = c.thaw(req)
    f(req)
    assert c.thaw(req) == before


@given(messages, texts)
def test_builders_and_handlers_do_not_mutate_plain_inputs(msgs, reply_text):
    plain = copy.deepcopy(msgs)
    req = c.request("m", msgs, stop=["x"])
    assert msgs == plain
    before = c.thaw(req)
    ctx = c.mock_call(req.set("mock", c.mock_script(reply_text)))
    c.reply(ctx, "next")
    assert c.thaw(req) == before


@given(responses)
def test_stream_replay_does_not_mutate_the_response(resp):
    before = c.thaw(resp)
    list(c.response_events(resp))
    assert c.thaw(resp) == before


@given(
    st.recursive(
        st.integers() | st.text(max_size=3),
        lambda x: st.lists(x, max_size=3) | st.dictionaries(st.text(max_size=3), x, max_size=3),
    )
)
def test_freeze_thaw_round_trip_and_freeze_idempotent(value):
    frozen = c.freeze(value)
    assert c.freeze(frozen) is frozen
    assert c.thaw(frozen) == c.thaw(value)
