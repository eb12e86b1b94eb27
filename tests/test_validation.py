"""Input checked at the door: every bad field of a message is named by its path."""

import base64
import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap, PVector
from toolz import pipe

import conduit as c
from conduit._data import freeze
from conduit.request import add_message, as_request, last_message, message, set_model, set_options
from tests.strategies import requests, texts, tool_calls

# -- valid plain messages, every shape DESIGN §2 allows ------------------------------------------

media = st.sampled_from(["image/png", "image/jpeg", "application/pdf"])
sources = st.fixed_dictionaries({"type": st.just("url"), "url": texts}) | st.fixed_dictionaries(
    {"type": st.just("base64"), "data": texts, "media_type": media}
)
blocks = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": texts}),
    st.fixed_dictionaries(
        {"type": st.just("reasoning"), "text": texts},
        optional={"signature": texts, "redacted": texts},
    ),
    st.fixed_dictionaries({"type": st.just("image"), "source": sources}),
    st.fixed_dictionaries(
        {"type": st.just("document"), "source": sources}, optional={"title": texts}
    ),
)
contents = texts | st.lists(blocks, max_size=3)
names = st.text(min_size=1, max_size=8)
plain_messages = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user"]), "content": contents}, optional={"name": names}
)
assistant_messages = st.fixed_dictionaries(
    {"role": st.just("assistant")},
    optional={"content": contents | st.none(), "tool_calls": tool_calls, "name": names},
)
tool_messages = st.fixed_dictionaries(
    {"role": st.just("tool"), "content": contents, "tool_call_id": st.text(max_size=8)},
    optional={"is_error": st.booleans()},
)
messages = st.lists(plain_messages | assistant_messages | tool_messages, max_size=5)

# -- corrupting one field ----------------------------------------------------------------------

BAD = 42  # a wrong type for every field a message has


def render(path):
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _required(path, parent, key):
    if key in ("role", "type", "text", "source", "url", "data", "media_type", "id"):
        return True
    if key == "content":
        return parent["role"] != "assistant"
    if key == "tool_call_id":
        return parent["role"] == "tool"
    return key == "name" and "tool_calls" in path[-3:-2]


def sites(value, path):
    """Yield (path, deletable) for every field below *value*; tool arguments are free-form."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*path, key), _required(path, value, key)
            if key != "arguments":
                yield from sites(inner, (*path, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield (*path, i), False
            yield from sites(inner, (*path, i))


def corrupt(root, path, delete):
    data = copy.deepcopy(root)
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = BAD
    return data


@st.composite
def corrupted(draw, min_size=1):
    msgs = draw(messages.filter(lambda ms: len(ms) >= min_size))
    where = draw(st.sampled_from(list(sites({"messages": msgs}, ()))))
    path, deletable = where
    delete = deletable and draw(st.booleans())
    return corrupt({"messages": msgs}, path, delete)["messages"], render(path)


def error_of(fn, *args):
    with pytest.raises(c.ValidationError) as err:
        fn(*args)
    return err.value


# -- properties --------------------------------------------------------------------------------


@given(messages)
def test_valid_messages_always_pass_and_are_kept_as_given(msgs):
    before = copy.deepcopy(msgs)
    req = c.request("m", msgs)
    assert msgs == before
    expected = [{**m, "content": "" if m.get("content") is None else m["content"]} for m in msgs]
    assert c.thaw(req["messages"]) == expected
    assert isinstance(req["messages"], PVector)
    assert all(isinstance(m, PMap) for m in req["messages"])


@given(corrupted())
def test_one_corrupted_field_is_named_by_its_path(case):
    msgs, path = case
    before = copy.deepcopy(msgs)
    for build in (
        lambda: c.request("m", msgs),
        lambda: as_request({"model": "m", "messages": msgs}),
    ):
        err = error_of(build)
        assert str(err).startswith(path + ":"), (str(err), path)
        assert err.data["path"] == path
        assert "; " in str(err)  # and says what to do
    assert msgs == before


@given(requests, corrupted())
def test_add_message_names_the_index_the_message_would_take(req, case):
    msgs, path = case
    if not path.startswith("messages[0]"):
        return
    err = error_of(add_message(msgs[0]), req)
    assert str(err).startswith(path.replace("[0]", f"[{len(req['messages'])}]", 1) + ":")


@given(requests)
def test_as_request_on_a_frozen_request_is_the_identical_object(req):
    assert as_request(req) is req
    assert as_request(c.thaw(req)) == req
    assert set_model(req["model"])(req) is req
    assert set_options({})(req) is req


@given(
    messages,
    st.sampled_from(["next", {"role": "user", "content": [{"type": "text", "text": "x"}]}]),
)
def test_nothing_mutates_its_input(msgs, turn):
    ctx = {"model": "m", "messages": msgs, "response": {"role": "assistant", "content": "ok"}}
    before = copy.deepcopy(ctx), copy.deepcopy(turn)
    nxt = c.reply(ctx, turn)
    pipe(ctx, add_message(turn), set_model("n"), set_options({"temperature": 1}))
    c.content(ctx), c.tool_calls(ctx), c.usage(ctx), as_request(ctx), last_message(ctx)
    assert (ctx, turn) == before
    assert len(nxt["messages"]) == len(msgs) + 2


# -- the four block types, and what each one needs ---------------------------------------------


@pytest.mark.parametrize(
    "block",
    [
        {"type": "text", "text": "hi"},
        {"type": "reasoning", "text": "let me think", "signature": "sig"},
        {"type": "reasoning", "text": "", "redacted": "opaque"},
        {"type": "image", "source": {"type": "url", "url": "https://x/cat.png"}},
        {"type": "image", "source": {"type": "base64", "data": "QUJD", "media_type": "image/png"}},
        {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}, "title": "A"},
        {
            "type": "document",
            "source": {"type": "base64", "data": "JVBE", "media_type": "application/pdf"},
        },
    ],
)
def test_every_design_block_type_is_accepted(block):
    assert c.request("m", [{"role": "user", "content": [block]}])["messages"][0]["content"] == [
        block
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([{"text": "hi"}], "messages[1].content[0].type: missing; use one of text, reasoning"),
        ([{"type": "video"}], "messages[1].content[0].type: unknown block type 'video'"),
        ([{"type": "text"}], "messages[1].content[0].text: missing"),
        (
            [{"type": "reasoning", "text": 1}],
            "messages[1].content[0].text: expected a string, got int",
        ),
        (["hi"], "messages[1].content[0]: expected a block map, got str; build one with"),
        (
            {"type": "text", "text": "hi"},
            "messages[1].content: expected a string or a list of blocks",
        ),
        ([{"type": "image"}], "messages[1].content[0].source: missing; use {"),
        (
            [{"type": "document", "source": "a.pdf"}],
            "messages[1].content[0].source: expected a map",
        ),
        (
            [c.text_block("a"), {"type": "image", "source": {"type": "base64", "data": "QUJD"}}],
            "messages[1].content[1].source.media_type: missing; give the MIME type",
        ),
        (
            [{"type": "image", "source": {"url": "u"}}],
            "messages[1].content[0].source.type: missing",
        ),
        ([{"type": "image", "source": {"type": "file"}}], "content[0].source.type: unknown source"),
        (
            [{"type": "document", "source": {"type": "url", "url": "u"}, "title": 3}],
            "[0].title: exp",
        ),
    ],
)
def test_bad_blocks_name_their_path(content, expected):
    err = error_of(c.request, "m", ["hi", {"role": "user", "content": content}])
    assert expected in str(err)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"role": "tool", "content": "3"}, "messages[0].tool_call_id: missing; give the id"),
        ({"role": "tool", "content": "3", "tool_call_id": 7}, "tool_call_id: expected a string"),
        ({"role": "user", "content": "x", "name": 1}, "messages[0].name: expected a string"),
        ({"role": "tool", "content": "x", "tool_call_id": "t", "is_error": "no"}, "is_error"),
        (
            {"role": "assistant", "tool_calls": [{"name": "f"}]},
            "messages[0].tool_calls[0].id: missing",
        ),
        ({"role": "assistant", "tool_calls": [{"id": "1"}]}, "tool_calls[0].name: missing"),
        (
            {"role": "assistant", "tool_calls": [{"id": "1", "name": ""}]},
            "tool_calls[0].name: empty",
        ),
        (
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "1", "name": "f", "arguments": "{}"}],
            },
            "messages[0].tool_calls[0].arguments: expected a map, got str; parse them first",
        ),
        (
            {"role": "assistant", "tool_calls": {"id": "1"}},
            "messages[0].tool_calls: expected a list",
        ),
        ({"role": "user"}, "messages[0].content: missing"),
    ],
)
def test_bad_message_fields_name_their_path(message, expected):
    assert expected in str(error_of(c.request, "m", [message]))


def test_the_fast_path_checks_what_it_skips():
    assert error_of(c.request, "m", [{"role": "tool", "content": "x"}]).data["path"] == (
        "messages[0].tool_call_id"
    )
    assert error_of(c.request, "m", [{"role": "assistant", "tool_calls": 1}]).data["path"] == (
        "messages[0].tool_calls"
    )
    assert (
        error_of(c.request, "m", [{"role": 1, "content": "x"}]).data["path"] == "messages[0].role"
    )
    assert error_of(c.request, "m", 42).data["path"] == "messages"


def test_builders_check_too():
    assert str(error_of(c.user, "look", {"type": "image"})).startswith("message.content[1].source:")
    assert str(error_of(c.assistant, "", [{"id": 1, "name": "f"}])).startswith(
        "message.tool_calls[0].id: expected a string, got int"
    )
    assert str(error_of(message, "bot", "x")).startswith("message.role: unknown role 'bot'")
    assert c.user(c.image_url("https://x/y.png"))["content"] == [c.image_url("https://x/y.png")]
    assert c.assistant(None)["content"] == ""


# -- plain dicts anywhere a request or context is taken ----------------------------------------

CTX = {
    "model": "m",
    "messages": [{"role": "user", "content": "Hi"}],
    "options": {"temperature": 0},
    "response": {
        "role": "assistant",
        "content": [{"type": "text", "text": "Yo"}],
        "tool_calls": [{"id": "t1", "name": "f", "arguments": {"a": 1}}],
        "usage": {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5},
    },
    "parsed": {"a": 1},
}


def test_plain_dict_contexts_work_with_every_request_function():
    nxt = c.reply(CTX, "next")
    assert [m["role"] for m in nxt["messages"]] == ["user", "assistant", "user"]
    assert nxt["messages"][1]["tool_calls"][0]["id"] == "t1"
    assert "response" not in nxt and "parsed" not in nxt
    assert nxt["options"]["temperature"] == 0
    assert c.content(CTX) == "Yo"
    assert c.tool_calls(CTX)[0]["arguments"] == {"a": 1}
    assert c.usage(CTX)["total_tokens"] == 5
    kept = as_request(CTX)
    assert kept["response"]["usage"]["total_tokens"] == 5 and kept["parsed"] == {"a": 1}
    assert isinstance(kept["response"], PMap)
    assert pipe(CTX, set_model("n"))["model"] == "n"
    assert pipe(CTX, set_options({"seed": 1}))["options"] == {"temperature": 0, "seed": 1}
    assert [m["content"] for m in pipe(CTX, add_message("more"))["messages"]] == ["Hi", "more"]
    assert isinstance(last_message(CTX), PMap) and last_message(CTX)["content"] == "Hi"


def test_a_bad_response_is_named_by_its_path_in_reply():
    bad = {**CTX, "response": {"content": "x", "tool_calls": [{"id": None, "name": "f"}]}}
    assert str(error_of(c.reply, bad, "next")).startswith("response.tool_calls[0].id: missing")
    assert str(error_of(c.reply, CTX, {"role": "user"})).startswith("messages[2].content: missing")


def test_bad_request_maps_say_what_to_do():
    assert str(error_of(as_request, {"model": "m", "options": 3})).startswith(
        "options: expected a map"
    )
    assert str(error_of(c.content, "text")).startswith("context: expected a context")


def test_messages_set_past_the_door_are_checked_when_next_used():
    """A frozen request whose messages were replaced with .set is checked at the next door (a
    handler, reply, with_*): the bad field's path, before anything is sent."""
    script = c.mock_script("never")
    req = c.request("m", "hi", mock=script).set(
        "messages", freeze([{"role": "user", "content": [{"text": "hi"}]}])
    )
    with pytest.raises(c.ValidationError, match=r"messages\[0\]\.content\[0\]\.type"):
        c.mock_call(req)
    tool_without_id = c.request("m", "hi").set(
        "messages", freeze([{"role": "tool", "content": "x"}])
    )
    with pytest.raises(c.ValidationError, match=r"messages\[0\]\.tool_call_id"):
        c.mock_call(tool_without_id)
    assert not script.calls
    fine = c.request("m", "hi").set("messages", [{"role": "user", "content": "ok"}])
    assert c.content(c.mock_call(fine)) == "ok"


def test_a_request_checked_once_is_not_checked_again_and_nothing_is_kept_alive():
    """The door remembers the requests it passed by identity, weakly: the identical object comes
    back as it is; a key set past the door is still checked; a request dropped is forgotten."""
    import gc
    import importlib
    import weakref

    request_module = importlib.import_module("conduit.request")

    req = c.request("m", "hi", api_key="sk-1")
    assert id(req) in request_module._PASSED  # the door remembers it ...
    checks = request_module._recheck, request_module._unmasked
    try:  # ... so sending it again checks nothing
        request_module._recheck = request_module._unmasked = None
        assert as_request(req) is req
    finally:
        request_module._recheck, request_module._unmasked = checks
    later = req.set("api_key", "sk-2\n")  # a new object: not passed yet, so checked
    with pytest.raises(c.ValidationError, match="api_key ends with a newline"):
        as_request(later)
    fixed = as_request(req.set("api_key", "sk-2"))
    assert isinstance(fixed["api_key"], c.Secret) and as_request(fixed) is fixed
    gone = weakref.ref(fixed)
    key = id(fixed)
    del fixed
    gc.collect()
    assert gone() is None and key not in request_module._PASSED


def test_credentials_set_past_the_door_are_masked_at_the_next_door():
    """A credential header or a base URL's user:password@ given with .set after c.request is
    masked (and checked) when the request is next used, like one given to c.request."""
    req = c.request("mock:m", "hi", mock=c.mock_script("ok"))
    later = req.set("headers", {"Cookie": "session=s3cret", "X-Trace": "t1"}).set(
        "base_url", "https://user:pw-s3cret@proxy.example/v1"
    )
    ctx = c.call(later)
    shown = repr(ctx) + repr(c.reply(ctx, "next"))
    assert "s3cret" not in shown and "t1" in shown
    assert ctx["base_url"] == "https://proxy.example/v1"
    bad = req.set("headers", {"Authorization": "Bearer sk-1\n"})
    with pytest.raises(c.ValidationError, match="ends with a newline"):
        c.call(bad)


def test_headers_set_past_the_door_are_frozen_checked_and_new_url_credentials_replace_old():
    """A plain headers map set with .set is frozen (a later change to the dict cannot reach the
    request), a header name that is not text is a ValidationError, and a base URL given new
    user:password@ replaces the Basic credentials the old one became."""
    from conduit._data import reveal

    given = {"X-Trace": "t"}
    req = as_request(c.request("m").set("headers", given))
    given["Authorization"] = "Bearer sk-late"
    assert dict(as_request(req)["headers"]) == {"X-Trace": "t"}
    with pytest.raises(c.ValidationError, match="header name is not an HTTP token"):
        as_request(c.request("m").set("headers", {1: "x"}))
    old = c.request("m", base_url="http://u:p@host/v1")
    new = as_request(old.set("base_url", "http://u2:p2@host/v1"))
    basic = reveal(new["headers"]["Authorization"]).split()[1]
    assert new["base_url"] == "http://host/v1" and base64.b64decode(basic) == b"u2:p2"


CREDENTIAL_OPTIONS = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "client_secret",
    "password",
    "apiKey",
    "x_api_key",
    "access_token",
    "accessToken",
    "refreshToken",
    "private_key",
    "session_token",
    "authorization",
    "Cookie",
    "token",
]


@pytest.mark.parametrize("name", CREDENTIAL_OPTIONS)
@pytest.mark.parametrize("way", ["c.request", "plain dict", "set_options", "set after the door"])
def test_a_credential_given_as_an_option_is_refused_by_name_never_echoed(name, way):
    """Options go in the request body (a provider may quote them in an error) and in repr:
    a credential there is refused at once, naming the option and where it belongs."""
    secret = "CANARY-" + name
    with pytest.raises(c.ValidationError) as caught:
        if way == "c.request":
            c.request("bedrock:anthropic.claude-3-haiku", "hi", **{name: secret})
        elif way == "plain dict":
            as_request({"model": "m", "options": {name: secret}})
        elif way == "set_options":
            set_options({name: secret})
        else:  # refused when next used, before anything is sent
            c.mock_call(c.request("m", "hi").set("options", freeze({name: secret})))
    said = str(caught.value)
    assert f"'{name}' is a credential" in said and secret not in said
    assert ("AWS_PROFILE" in said) == name.startswith("aws_")
    assert "api_key=" in said or name.startswith("aws_")


@pytest.mark.parametrize(
    "name", ["prompt_cache_key", "stop_token_ids", "max_tokens", "top_k", "key_words"]
)
def test_options_that_merely_hold_key_or_token_are_sent(name):
    sent = c.wire(c.request("gpt-4o-mini", "hi", api_key="sk-x", **{name: "v"}))
    assert sent["body"][name] == "v"
