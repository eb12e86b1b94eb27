"""Documents and audio: a PDF on the Anthropic and OpenAI wires, audio on OpenAI's, and the
clear error when audio goes to Anthropic.

Runs offline: the pure codecs show the request bodies, and the refusals come before any network
call or API key. See docs/documents-and-audio.md.
"""

import base64
import json

import conduit as c
from conduit.providers import anthropic, openai

# A one-page PDF that says "Hello, world!", base64-encoded. Yours:
# base64.b64encode(Path("report.pdf").read_bytes()).decode()
PDF_BASE64 = (
    "JVBERi0xLjQKMSAwIG9iago8PCAvVHlwZSAvQ2F0YWxvZyAvUGFnZXMgMiAwIFIgPj4KZW5kb2JqCgoyIDAgb2Jq"
    "Cjw8IC9UeXBlIC9QYWdlcyAvS2lkcyBbMyAwIFJdIC9Db3VudCAxID4+CmVuZG9iagoKMyAwIG9iago8PCAvVHlw"
    "ZSAvUGFnZSAvUGFyZW50IDIgMCBSIC9NZWRpYUJveCBbMCAwIDYxMiA3OTJdCiAgIC9Db250ZW50cyA0IDAgUiAv"
    "UmVzb3VyY2VzIDw8IC9Gb250IDw8IC9GMSA1IDAgUiA+PiA+PiA+PgplbmRvYmoKCjQgMCBvYmoKPDwgL0xlbmd0"
    "aCA0NCA+PgpzdHJlYW0KQlQgL0YxIDI0IFRmIDEwMCA3MDAgVGQgKEhlbGxvLCB3b3JsZCEpIFRqIEVUCmVuZHN0"
    "cmVhbQplbmRvYmoKCjUgMCBvYmoKPDwgL1R5cGUgL0ZvbnQgL1N1YnR5cGUgL1R5cGUxIC9CYXNlRm9udCAvSGVs"
    "dmV0aWNhID4+CmVuZG9iagoKeHJlZgowIDYKMDAwMDAwMDAwMCA2NTUzNSBmCjAwMDAwMDAwMDkgMDAwMDAgbgow"
    "MDAwMDAwMDU4IDAwMDAwIG4KMDAwMDAwMDExNSAwMDAwMCBuCjAwMDAwMDAyNjYgMDAwMDAgbgowMDAwMDAwMzYw"
    "IDAwMDAwIG4KCnRyYWlsZXIKPDwgL1NpemUgNiAvUm9vdCAxIDAgUiA+PgpzdGFydHhyZWYKNDM0CiUlRU9G"
)
CLIP = base64.b64encode(b"ID3\x04\x00\x00\x00\x00\x00\x00").decode()  # the start of an mp3


def short(part: dict) -> str:
    """One content part as JSON, with long base64 strings elided."""

    def elide(value):
        if isinstance(value, dict):
            return {k: elide(v) for k, v in value.items()}
        if isinstance(value, str) and len(value) > 60:
            return f"{value[:32]}...({len(value)} chars)"
        return value

    return json.dumps(elide(part), sort_keys=True)


def main() -> None:
    pdf = c.document_base64(PDF_BASE64, title="hello.pdf")
    question = c.user("What does this PDF say?", pdf)

    body = anthropic.encode_chat(c.request("claude-sonnet-4-5", [question]))
    print("Anthropic:", short(body["messages"][0]["content"][1]))
    paper = c.document_url("https://example.com/paper.pdf", title="Paper")
    body = anthropic.encode_chat(c.request("claude-sonnet-4-5", [c.user("Summarize.", paper)]))
    print("Anthropic, by URL:", short(body["messages"][0]["content"][1]))

    body = openai.encode_chat(c.request("gpt-4o", [question]), provider="openai")
    print("OpenAI:", short(body["messages"][0]["content"][1]))

    clip = c.input_audio(CLIP, "mp3")
    listen = c.request("gpt-4o-audio-preview", [c.user("Transcribe this.", clip)])
    body = openai.encode_chat(listen, provider="openai")
    print("OpenAI audio:", short(body["messages"][0]["content"][1]))

    refused = [
        ("anthropic:claude-sonnet-4-5", c.user("Transcribe this.", clip)),
        ("gpt-4o", c.user("Summarize.", paper)),
        ("groq:llama-3.3-70b-versatile", question),
    ]
    for model, msg in refused:
        try:
            c.call(c.request(model, [msg]))  # refused while encoding: nothing is sent
        except c.ValidationError as err:
            print(f"{model}: {err}")

    offline = c.mock_call(c.request("m", [question], mock="It says: Hello, world!"))
    print("mock:", c.content(offline))


if __name__ == "__main__":
    main()
