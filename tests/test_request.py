import pickle

import pytest
from pyrsistent import PMap, PVector
from toolz import pipe

import conduit as c


def test_request_splits_options_from_connection_settings():
    req = c.request(
        "gpt-4o-mini",
        [c.user("Hi")],
        temperature=0.2,
        max_tokens=50,
        base_url="http://localhost:1/v1",
        api_key="sk-secret",
        tools=[],
    )
    assert req["model"] == "gpt-4o-mini"
    assert req["options"] == {"temperature": 0.2, "max_tokens": 50}
    assert req["base_url"] == "http://localhost:1/v1"
    assert isinstance(req["api_key"], c.Secret)
    assert isinstance(req["tools"], PVector) and len(req["tools"]) == 0


def test_plain_dicts_and_lists_are_frozen_at_the_door():
    raw_msgs = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    req = c.request("m", raw_msgs, stop=["a", "b"])
    assert isinstance(req["messages"], PVector)
    assert isinstance(req["messages"][0], PMap)
    assert isinstance(req["messages"][0]["content"][0], PMap)
    assert isinstance(req["options"]["stop"], PVector)
    raw_msgs[0]["content"][0]["text"] = "changed"
    assert req["messages"][0]["content"][0]["text"] == "hi"


def test_a_string_is_a_user_message():
    assert c.request("m", "hello")["messages"] == [c.user("hello")]


def test_message_builders_have_design_shapes():
    assert c.system("s") == {"role": "system", "content": "s"}
    assert c.user("u") == {"role": "user", "content": "u"}
    assert c.assistant("a") == {"role": "assistant", "content": "a"}
    call = {"id": "c1", "name": "add", "arguments": {"a": 1}}
    assert c.assistant("", [call])["tool_calls"] == [call]
    assert c.tool_result("c1", "3") == {"role": "tool", "content": "3", "tool_call_id": "c1"}
    assert c.tool_result("c1", "no", is_error=True)["is_error"] is True
    assert c.text_block("t") == {"type": "text", "text": "t"}
    assert c.image_url("https://x/y.png") == {
        "type": "image",
        "source": {"type": "url", "url": "https://x/y.png"},
    }
    assert c.image_base64("QUJD", "image/jpeg") == {
        "type": "image",
        "source": {"type": "base64", "data": "QUJD", "media_type": "image/jpeg"},
    }


def test_user_with_image_makes_blocks():
    msg = c.user("What is in this image?", c.image_url("https://x/cat.png"))
    assert msg["content"] == [
        c.text_block("What is in this image?"),
        c.image_url("https://x/cat.png"),
    ]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"role": "bot", "content": "x"}], "messages[0].role: unknown role 'bot'; use one of"),
        ([42], "messages[0]: expected a message map, got int; build one with c.user"),
        ([{"role": "user", "content": 5}], "messages[0].content: expected a string or a list"),
        (["ok", {"role": "wizard"}], "messages[1].role: unknown role 'wizard'"),
        (["ok", {"content": "x"}], "messages[1].role: missing; use one of"),
    ],
)
def test_bad_messages_get_clear_errors(messages, expected):
    with pytest.raises(c.ValidationError) as err:
        c.request("m", messages)
    assert str(err.value).startswith(expected)


def test_bad_model_is_a_clear_error():
    with pytest.raises(c.ValidationError, match="model must be a non-empty string"):
        c.request("", [])


def test_api_key_never_appears_in_repr_str_or_pickle_free_text():
    req = c.request("m", "hi", api_key="sk-live-abcdef123456")
    assert "sk-live-abcdef123456" not in repr(req)
    assert "sk-live-abcdef123456" not in str(req)
    assert "sk-live-abcdef123456" not in repr(c.thaw(req))
    assert c.Secret("sk-live-abcdef123456") == req["api_key"]
    assert pickle.loads(pickle.dumps(req))["api_key"] == req["api_key"]


def test_accessors_read_context_response_and_message():
    ctx = c.mock_call(
        c.request(
            "m",
            "hi",
            mock={
                "content": "yo",
                "tool_calls": [{"id": "t1", "name": "add", "arguments": {"a": 1}}],
            },
        )
    )
    assert c.content(ctx) == c.content(ctx["response"]) == "yo"
    assert c.tool_calls(ctx)[0]["name"] == "add"
    assert c.tool_calls(ctx) == c.tool_calls(ctx["response"])
    assert (
        c.usage(ctx)["total_tokens"] == c.usage(ctx)["input_tokens"] + c.usage(ctx)["output_tokens"]
    )
    assert c.content(c.user("plain")) == "plain"
    assert len(c.tool_calls(c.user("x"))) == 0


def test_content_on_a_request_without_response_says_what_to_do():
    with pytest.raises(c.ValidationError, match="no response yet"):
        c.content(c.request("m", "hi"))


def test_content_joins_text_blocks():
    msg = c.user("a", c.image_url("https://x"), "b")
    assert c.content(msg) == "ab"


def test_empty_tool_calls_is_not_a_tool_call():
    resp = c.make_response("done", tool_calls=[])
    assert resp["stop_reason"] == "end_turn"
    assert not c.tool_calls(resp)


def test_reply_appends_assistant_turn_and_user_turn():
    ctx = c.mock_call(c.request("m", [c.system("s"), c.user("Hi")], mock="Hello"))
    nxt = c.reply(ctx, "And then?")
    assert [(m["role"], m["content"]) for m in nxt["messages"]] == [
        ("system", "s"),
        ("user", "Hi"),
        ("assistant", "Hello"),
        ("user", "And then?"),
    ]
    assert "response" not in nxt
    assert c.content(c.mock_call(nxt)) == "Hello"


def test_reply_keeps_tool_calls_on_the_assistant_turn():
    call = {"id": "t1", "name": "f", "arguments": {}}
    ctx = c.mock_call(c.request("m", "go", mock={"tool_calls": [call]}))
    nxt = c.reply(ctx, c.tool_result("t1", "42"))
    assert nxt["messages"][1]["tool_calls"][0]["id"] == "t1"
    assert nxt["messages"][2]["role"] == "tool"


def test_set_model_noop_returns_identical_object():
    req = c.request("m")
    assert c.set_model("m")(req) is req
    assert c.set_options({})(req) is req
    assert pipe(req, c.set_model("n"))["model"] == "n"


def test_dict_requests_are_accepted_by_handlers():
    ctx = c.mock_call(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hey"}],
            "options": {"temperature": 0},
        }
    )
    assert c.content(ctx) == "hey"
    assert ctx["options"]["temperature"] == 0


def test_non_request_input_to_a_handler_is_a_clear_error():
    with pytest.raises(c.ValidationError, match="expected a request map"):
        c.mock_call({"messages": []})
