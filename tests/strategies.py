"""Shared hypothesis strategies: plain data that Conduit freezes at the door."""

from hypothesis import strategies as st

import conduit as c

texts = st.text(max_size=30)
roles = st.sampled_from(["system", "user", "assistant"])
messages = st.lists(st.fixed_dictionaries({"role": roles, "content": texts}), max_size=6)
options = st.dictionaries(
    st.sampled_from(["temperature", "max_tokens", "top_p", "seed"]),
    st.integers(min_value=0, max_value=1000),
    max_size=3,
)
requests = st.builds(
    lambda model, msgs, opts: c.request(model, msgs, **opts),
    st.sampled_from(["small", "large"]),
    messages,
    options,
)
json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
tool_calls = st.lists(
    st.builds(
        lambda i, name, args: {"id": f"call_{i}", "name": name, "arguments": args},
        st.integers(0, 99),
        st.sampled_from(["add", "search", "lookup"]),
        st.dictionaries(st.text(min_size=1, max_size=5), json_values, max_size=3),
    ),
    max_size=3,
    unique_by=lambda t: t["id"],
)
responses = st.builds(
    lambda text, calls, i, o: c.make_response(
        text, model="m", id="r1", tool_calls=calls, usage=c.make_usage(i, o)
    ),
    texts,
    tool_calls,
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)
_formats = st.none() | st.sampled_from(["anthropic-claude-v1", "openai-responses-v1"])
_signed = st.builds(
    lambda text, sig, fmt: {
        "type": "reasoning",
        "text": text,
        "signature": sig,
        **({"format": fmt} if fmt else {}),
    },
    texts,
    st.text(min_size=1, max_size=8),
    _formats,
)
_redacted = st.builds(
    lambda data, fmt: {
        "type": "reasoning",
        "text": "",
        "redacted": data,
        **({"format": fmt} if fmt else {}),
    },
    st.text(min_size=1, max_size=8),
    _formats,
)
_unsigned = st.builds(
    lambda text, fmt: {"type": "reasoning", "text": text, **({"format": fmt} if fmt else {})},
    st.text(min_size=1, max_size=30),
    _formats,
)
#: Responses whose content is reasoning blocks (signed or opaque; the last may be unsigned, as
#: only a signature or the answer's text ends a block) and then the answer's text.
reasoned_responses = st.builds(
    lambda blocks, last, answer: c.make_response(
        [*blocks, *([last] if last else []), {"type": "text", "text": answer}], model="m"
    ),
    st.lists(_signed | _redacted, max_size=3),
    st.none() | _unsigned,
    st.text(min_size=1, max_size=30),
).filter(lambda r: any(b["type"] == "reasoning" for b in r["content"]))
