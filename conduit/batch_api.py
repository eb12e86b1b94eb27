"""Provider batch APIs (OpenAI Batch, Anthropic Message Batches) as a handler for ``c.batch``.

``c.batch(c.openai_batch, requests, checkpoint="run.jsonl")`` sends the unfinished requests as
provider batches instead of one call each: the provider answers within 24 hours at half the
price. Requests are grouped by provider (the model's prefix picks it, as for a call), base URL
and credentials (key and credential headers); each group becomes one batch, or several for very
large groups. A batch's id is
written to the checkpoint before polling starts, so a run killed while it waits resumes
polling the same batch; each answer is then recorded per item as in any ``c.batch`` run.

The codecs are the providers' own (``encode_chat``/``decode_chat``); every request goes over
HTTP with the pooled clients and error mapping of :mod:`conduit.providers._http`, with the
request's secrets masked in every error and checkpoint line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx
from pyrsistent import freeze

from conduit._data import mask_url
from conduit._types import Request
from conduit.cache import tenant
from conduit.cost import call_cost, price_for
from conduit.errors import (
    ConduitError,
    ProviderError,
    ValidationError,
    error_from_response,
    redact_error,
)
from conduit.providers import _http
from conduit.providers._http import Provider
from conduit.request import as_request

__all__ = ["BATCH_DISCOUNT", "BatchAPI", "anthropic_batch", "openai_batch", "provider_batch"]

log = logging.getLogger("conduit")

#: The price of a batched call, as a share of the catalog's: both providers charge half.
BATCH_DISCOUNT = 0.5

#: Requests per batch: each provider's documented maximum.
MAX_ITEMS = {"openai": 50_000, "anthropic": 100_000}

_ENDED = {
    "openai": {"completed", "failed", "expired", "cancelled"},
    "anthropic": {"ended"},
}

# An errored Anthropic item carries the error type of the HTTP answer it would have had.
_STATUS_OF = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "overloaded_error": 529,
}


@attrs.frozen(kw_only=True)
class BatchAPI:
    """How a batch handler submits and waits: the provider it defaults to, the first wait
    between polls (seconds, growing by half each poll up to *max_poll*), how long to wait in
    all (None: as long as the provider takes), and ``on_status(info)``, called at each poll."""

    provider: str = "openai"
    poll: float = 5.0
    max_poll: float = 60.0
    timeout: float | None = None
    on_status: Callable[[Mapping[str, Any]], Any] | None = None


def provider_batch(
    provider: str = "openai",
    *,
    poll: float = 5.0,
    max_poll: float = 60.0,
    timeout: float | None = None,
    on_status: Callable[[Mapping[str, Any]], Any] | None = None,
) -> Callable[[Request], Request]:
    """Return a handler that ``c.batch`` runs as provider batches (see the module docstring).

    Called on one request it submits a batch of one and waits for it. *on_status* receives
    ``{"provider", "batch_id", "status", "total", "done", "failed"}`` at every poll (default:
    a log line). A batch still running after *timeout* seconds fails its items with a
    ``TimeoutError``; rerun with the same checkpoint to keep waiting for the same batch.

    >>> import conduit as c
    >>> h = c.provider_batch("anthropic", poll=0.5)
    >>> h.__name__, h.bulk.__name__
    ('anthropic_batch', 'bulk')
    """
    if poll <= 0 or max_poll < poll:
        raise ValidationError("poll must be above 0 and max_poll at least poll")
    api = BatchAPI(
        provider=provider, poll=poll, max_poll=max_poll, timeout=timeout, on_status=on_status
    )

    async def bulk(
        reqs: Sequence[Request],
        keys: Sequence[str],
        todo: Sequence[int],
        notes: Sequence[Mapping[str, Any]],
        finish: Callable[[int, Any], None],
        note: Callable[[dict[str, Any]], None],
    ) -> None:
        await run_bulk(api, reqs, keys, todo, notes, finish, note)

    def handler(req: Request) -> Request:
        got: list[Any] = []
        one = [as_request(req)]
        asyncio.run(bulk(one, ["0"], [0], [], lambda _, out: got.append(out), lambda _: None))
        if isinstance(got[0], BaseException):
            raise got[0]
        return got[0]  # type: ignore[no-any-return]

    handler.__doc__ = (
        f"Run requests as {provider} batches: pass to ``c.batch`` (one request alone is a batch "
        "of one). Made by ``c.provider_batch``, which documents it."
    )
    handler.__name__ = handler.__qualname__ = f"{provider}_batch"
    handler.bulk = bulk  # type: ignore[attr-defined]
    handler.api = api  # type: ignore[attr-defined]
    return handler


# --- one group of requests: the codec, the files, the polls ----------------------------------


@attrs.frozen(kw_only=True)
class _Group:
    spec: Provider
    req: Request  # the first request: its base URL and key serve the whole group
    items: tuple[tuple[int, str, Request, Request], ...]  # (index, custom_id, wire, caller's)


def custom_id(index: int, key: str) -> str:
    """Return the custom id of item *index*: its position and its request's digest, so a
    resumed batch's answers reach only the requests they were asked for.

    >>> custom_id(7, "ab12" * 16)
    '7-ab12ab12ab12ab12ab12ab12'
    """
    return f"{index}-{key[:24]}"


def _spec(name: str) -> Provider:
    if name == "openai":
        from conduit.providers.openai import OPENAI

        return OPENAI
    if name == "anthropic":
        from conduit.providers.anthropic import ANTHROPIC

        return ANTHROPIC
    raise ValidationError(
        f"{name} has no batch API Conduit can use: c.openai_batch and c.anthropic_batch take "
        f"openai and anthropic models; run {name} requests with c.batch and its call handler",
        data={"provider": name},
    )


def _groups(
    api: BatchAPI,
    reqs: Sequence[Request],
    keys: Sequence[str],
    todo: Sequence[int],
    finish: Callable[[int, Any], None],
) -> list[_Group]:
    from conduit.exchange import route  # the exchange picks the provider, as for a call

    found: dict[tuple[str, str, str], list[tuple[int, str, Request, Request]]] = {}
    firsts: dict[tuple[str, str, str], tuple[Provider, Request]] = {}
    for index in todo:
        try:
            wire, sent = route(api.provider, reqs[index])
            spec = _spec(wire.name)
            spec.encode(sent, False)  # an unsendable request fails alone, now
        except Exception as exc:
            finish(index, exc)
            continue
        # a batch goes out with its first request's credentials: only requests sent with the
        # same ones (key, credential headers, token function) share it
        group = (spec.name, _http.base_of(spec, sent), tenant(sent) or "")
        firsts.setdefault(group, (spec, sent))
        item = (index, custom_id(index, keys[index]), sent, reqs[index])
        found.setdefault(group, []).append(item)
    return [
        _Group(spec=firsts[g][0], req=firsts[g][1], items=tuple(items[i : i + MAX_ITEMS[g[0]]]))
        for g, items in found.items()
        for i in range(0, len(items), MAX_ITEMS[g[0]])
    ]


async def run_bulk(
    api: BatchAPI,
    reqs: Sequence[Request],
    keys: Sequence[str],
    todo: Sequence[int],
    notes: Sequence[Mapping[str, Any]],
    finish: Callable[[int, Any], None],
    note: Callable[[dict[str, Any]], None],
) -> None:
    """Send the *todo* items as provider batches, resuming the ones *notes* says are open."""
    groups = _groups(api, reqs, keys, todo, finish)
    collected = {n.get("batch_id") for n in notes if n.get("event") == "collected"}
    open_ = [n for n in notes if n.get("event") == "submitted" and n["batch_id"] not in collected]
    jobs = []
    for group in groups:
        waiting = {cid: item for item in group.items for cid in [item[1]]}
        for sub in open_:
            mine = [waiting.pop(c) for c in sub.get("custom_ids", ()) if c in waiting]
            if sub.get("provider") == group.spec.name and mine:
                jobs.append(_resume(api, attrs.evolve(group, items=tuple(mine)), sub, finish, note))
        if waiting:
            rest = attrs.evolve(group, items=tuple(waiting.values()))
            jobs.append(_submit_and_collect(api, rest, finish, note))
    await asyncio.gather(*jobs)


async def _submit_and_collect(
    api: BatchAPI, group: _Group, finish: Callable[[int, Any], None], note: Callable[..., None]
) -> None:
    try:
        record = await (_openai_submit if group.spec.name == "openai" else _anthropic_submit)(group)
    except Exception as exc:
        _fail_all(group, exc, finish)
        return
    note({**record, "event": "submitted", "custom_ids": [i[1] for i in group.items]})
    await _resume(api, group, record, finish, note)


async def _resume(
    api: BatchAPI,
    group: _Group,
    record: Mapping[str, Any],
    finish: Callable[[int, Any], None],
    note: Callable[..., None],
) -> None:
    """Poll the batch *record* names until it ends, then record every item of *group*."""
    spec, batch_id = group.spec, str(record["batch_id"])
    try:
        final = await _poll(api, group, batch_id)
        answers = await (_openai_results if spec.name == "openai" else _anthropic_results)(
            group, final
        )
    except Exception as exc:
        _fail_all(group, exc, finish)
        return
    status = str(final.get("status") or final.get("processing_status"))
    hidden = _http.secrets(spec, group.req)  # the server's words (a failed batch's reasons, an
    for index, cid, _, req in group.items:  # item's error) may quote the key back
        out = _item(group, req, batch_id, status, answers.get(cid, answers.get("*")))
        finish(index, redact_error(out, hidden) if isinstance(out, BaseException) else out)
    note({"event": "collected", "provider": spec.name, "batch_id": batch_id, "status": status})


def _fail_all(group: _Group, exc: Exception, finish: Callable[[int, Any], None]) -> None:
    err = _http.decode_failure(group.spec, group.req, "batch answer", exc)
    for index, *_ in group.items:
        finish(index, err)


async def _poll(api: BatchAPI, group: _Group, batch_id: str) -> Mapping[str, Any]:
    """GET the batch with growing waits until it ends; a few failed polls in a row are waited
    out (a 24-hour wait should not die of one 503), more are raised."""
    spec = group.spec
    start, delay, failures = time.monotonic(), api.poll, 0
    while True:
        try:
            found = await _get_json(group, _batch_url(group, batch_id))
            failures = 0
        except (ProviderError, ConduitError) as exc:
            code = getattr(exc, "status_code", None)
            failures += 1
            if failures >= 5 or not (code is None or code >= 500 or code == 429):
                raise
            found = None
        if found is not None:
            _report(api, spec.name, batch_id, found)
            if (found.get("status") or found.get("processing_status")) in _ENDED[spec.name]:
                return found  # type: ignore[no-any-return]
        if api.timeout is not None and time.monotonic() - start > api.timeout:
            raise ConduitError(
                f"{spec.name} batch {batch_id} has not ended after {api.timeout:g} s; rerun "
                "with the same checkpoint to keep waiting for it (it is not submitted again)",
                data={"provider": spec.name, "batch_id": batch_id},
            )
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, api.max_poll)


def _report(api: BatchAPI, provider: str, batch_id: str, found: Mapping[str, Any]) -> None:
    counts = found.get("request_counts") or {}
    if provider == "openai":
        total, failed = counts.get("total", 0), counts.get("failed", 0)
        done, status = counts.get("completed", 0) + failed, found.get("status")
    else:
        failed = sum(counts.get(k, 0) for k in ("errored", "canceled", "expired"))
        done, status = counts.get("succeeded", 0) + failed, found.get("processing_status")
        total = done + counts.get("processing", 0)
    info = {
        "provider": provider,
        "batch_id": batch_id,
        "status": status,
        "total": total,
        "done": done,
        "failed": failed,
    }
    if api.on_status is not None:
        api.on_status(freeze(info))
    else:
        log.info("%s batch %s: %s, %d/%d done", provider, batch_id, status, done, total)


# --- HTTP, through the providers' shell ------------------------------------------------------


async def _send(group: _Group, method: str, url: str, **kwargs: Any) -> httpx.Response:
    spec, req = group.spec, group.req
    headers = _http.request_headers(spec, req)
    if "files" in kwargs:
        headers.pop("Content-Type")  # httpx writes the multipart boundary
    try:
        r = await (await _http.aclient()).request(method, url, headers=headers, **kwargs)
    except _http.TRANSPORT_ERRORS as exc:
        raise _http.transport_error(spec, exc, req) from exc
    if r.status_code >= 400:
        raise _http.status_error(spec, req, r.status_code, r.headers, r.content, r.request.headers)
    return r


async def _get_json(group: _Group, url: str) -> Any:
    found = _http.json_body(group.spec, await _send(group, "GET", url))
    if not isinstance(found, dict):
        raise ProviderError(f"{group.spec.name} answered {url} with {type(found).__name__}")
    return found


def _base(group: _Group) -> str:
    return _http.base_of(group.spec, group.req)


def _at(group: _Group, path: str) -> str:
    """The URL of *path* on the group's base URL (a query the base carries goes after it)."""
    return _http.joined_url(_base(group), lambda root: root + path)


def _batch_url(group: _Group, batch_id: str) -> str:
    where = "/batches/" if group.spec.name == "openai" else "/messages/batches/"
    return _at(group, f"{where}{batch_id}")


def _lines(raw: bytes, what: str, provider: str) -> list[dict[str, Any]]:
    try:
        found = [json.loads(line) for line in raw.splitlines() if line.strip()]
    except ValueError as exc:
        raise ProviderError(f"{provider}'s {what} is not JSON Lines ({exc})") from None
    return [x for x in found if isinstance(x, dict)]


async def _openai_submit(group: _Group) -> dict[str, Any]:
    lines = [
        json.dumps(
            {
                "custom_id": cid,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": group.spec.encode(sent, False),
            }
        )
        for _, cid, sent, _ in group.items
    ]
    upload = await _send(
        group,
        "POST",
        _at(group, "/files"),
        data={"purpose": "batch"},
        files={"file": ("batch.jsonl", "\n".join(lines).encode() + b"\n", "application/jsonl")},
    )
    file_id = _http.json_body(group.spec, upload)["id"]
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    made = await _send(group, "POST", _at(group, "/batches"), json=body)
    found = _http.json_body(group.spec, made)
    return {"provider": "openai", "batch_id": found["id"], "input_file_id": file_id}


async def _openai_results(group: _Group, final: Mapping[str, Any]) -> dict[str, Any]:
    if final.get("status") == "failed":
        reasons = [e.get("message", "") for e in (final.get("errors") or {}).get("data") or ()]
        return {"*": "; ".join(r for r in reasons if r) or "no reason given"}
    out: dict[str, Any] = {}
    for field in ("error_file_id", "output_file_id"):  # a later output line wins
        if final.get(field):
            raw = await _send(group, "GET", _at(group, f"/files/{final[field]}/content"))
            out.update(
                {str(x.get("custom_id")): x for x in _lines(raw.content, "result file", "openai")}
            )
    return out


async def _anthropic_submit(group: _Group) -> dict[str, Any]:
    requests = [
        {"custom_id": cid, "params": group.spec.encode(sent, False)}
        for _, cid, sent, _ in group.items
    ]
    made = await _send(group, "POST", _at(group, "/messages/batches"), json={"requests": requests})
    return {"provider": "anthropic", "batch_id": _http.json_body(group.spec, made)["id"]}


async def _anthropic_results(group: _Group, final: Mapping[str, Any]) -> dict[str, Any]:
    url = str(final.get("results_url") or "")
    if not url:
        return {}
    if urlsplit(url)[:2] != urlsplit(_base(group))[:2]:  # the key goes only where it went before
        raise ProviderError(
            f"anthropic's results_url {mask_url(url)} is not on {mask_url(_base(group))}: "
            "not sent the API key",
            provider="anthropic",
        )
    query = _base(group).partition("?")[2]
    if query and "?" not in url:  # a gateway's query (its key, say) goes on every request
        url = f"{url}?{query}"
    raw = await _send(group, "GET", url)
    return {str(x.get("custom_id")): x for x in _lines(raw.content, "results", "anthropic")}


# --- one item's answer -----------------------------------------------------------------------


def _item(group: _Group, sent: Request, batch_id: str, status: str, line: Any) -> Any:
    """Return item *sent*'s context, or the error it failed with, from its result *line*."""
    spec = group.spec
    where = f"{spec.name} batch {batch_id}"
    facts = {"batch_id": batch_id, "batch_status": status}
    if status == "failed":
        return ProviderError(
            f"{where} failed before running any request: {line}; fix the input and rerun",
            provider=spec.name,
            data=facts,
        )
    if line is None:
        return ProviderError(
            f"{where} ended ({status}) without a result for this request; rerun to submit it again",
            provider=spec.name,
            data=facts,
        )
    try:
        if spec.name == "openai":
            ctx = _openai_item(group, sent, where, line, facts)
        else:
            ctx = _anthropic_item(group, sent, where, line, facts)
    except Exception as exc:
        return _http.decode_failure(spec, group.req, "batch result", exc)
    return ctx if isinstance(ctx, BaseException) else _priced(ctx)


def _openai_item(group: _Group, sent: Request, where: str, line: Any, facts: dict[str, Any]) -> Any:
    spec, error, response = group.spec, line.get("error"), line.get("response")
    if error:
        code = error.get("code")
        return ProviderError(
            f"{where}: {code}: {error.get('message')}",
            provider=spec.name,
            data={**facts, "error_code": code},
        )
    status = response.get("status_code")
    if status != 200:
        headers = {"x-request-id": response.get("request_id") or ""}
        return _error(group, status, headers, response.get("body"))
    return spec.decode(sent, response["body"], spec.name)


def _anthropic_item(
    group: _Group, sent: Request, where: str, line: Any, facts: dict[str, Any]
) -> Any:
    spec, result = group.spec, line.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded":
        return spec.decode(sent, result["message"], spec.name)
    if kind == "errored":
        body = result.get("error") or {}
        err_type = (body.get("error") or {}).get("type")
        return _error(group, _STATUS_OF.get(str(err_type), 500), {}, body)
    return ProviderError(
        f"{where}: this request was {kind} before it ran; rerun to submit it again",
        provider=spec.name,
        data={**facts, "result_type": kind},
    )


def _error(group: _Group, status: int, headers: dict[str, str], body: Any) -> ProviderError:
    hidden = _http.secrets(group.spec, group.req)
    return error_from_response(group.spec.name, status, headers, body, secrets=hidden)


def _priced(ctx: Request) -> Request:
    """Put the call's cost at the batch price on ``ctx["cost"]`` (None when unpriced)."""
    usage = ctx["response"].get("usage")
    price = price_for(str(ctx["response"].get("model") or ctx["model"])) or price_for(
        str(ctx["model"])
    )
    if price is None or usage is None:
        return ctx.set("cost", None)
    return ctx.set("cost", round(call_cost(usage, price) * BATCH_DISCOUNT, 10))


#: ``c.batch(c.openai_batch, requests, checkpoint=...)``: OpenAI's Batch API.
openai_batch = provider_batch("openai")
#: ``c.batch(c.anthropic_batch, requests, checkpoint=...)``: Anthropic's Message Batches.
anthropic_batch = provider_batch("anthropic")
