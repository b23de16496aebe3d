"""The adapter file allow-list, decided by name *and* content (magic bytes), never by extension.

Allowed files (flat names, no directories):

* ``adapter_config.json`` - the PEFT config (parsed by :mod:`registry.validation.config`).
* ``adapter_model.safetensors`` - the weights (parsed by :mod:`registry.validation.safetensors`).
* Plain-text extras that peft or tokenizer ``save_pretrained`` write next to an adapter:
  ``README.md`` (peft's model card), ``tokenizer.json``, ``tokenizer_config.json``,
  ``special_tokens_map.json``, ``added_tokens.json``, ``chat_template.jinja``,
  ``chat_template.json``, ``vocab.json``, ``merges.txt``. They must be UTF-8 without NUL bytes, and
  the ``.json`` ones must parse. Binary tokenizer files (``tokenizer.model``) are not allowed: they
  cannot be checked as text.

Everything else is :class:`~registry.errors.ForbiddenFile`. Reasons:

* ``forbidden_name`` - a name outside the list, or an unsafe name (path separators, ``..``, NUL,
  control characters, empty, over 255 characters).
* ``pickle`` - pickle content (protocol >= 2 magic ``0x80 <proto>``, or a protocol 0/1 text pickle
  that imports a callable), or a pickle-format name (``.bin``, ``.pt``, ``.pth``, ``.pkl``,
  ``.pickle``, ``.ckpt``, ``.joblib``) - peft and vLLM fall back to ``adapter_model.bin`` via
  ``torch.load``, so such a file is refused even next to a valid safetensors file.
* ``archive`` - zip (also torch's zip checkpoints), gzip, xz, 7z, bzip2, zstd or tar content.
* ``binary`` - a text extra that is not UTF-8 or contains NUL.
* ``malformed_json`` - a ``.json`` text extra that does not parse.
* ``too_large`` - a text extra over its size limit (:func:`text_limit`), refused from the size
  alone before the bytes are read: JSON decoding costs ~10-30x the file size in memory (a 63 MB
  ``tokenizer.json`` took 1.8 GB).

A safetensors file whose first 8 bytes happen to resemble a pickle (e.g. header length 0x380
begins ``80 03``) is recognised by the ``{`` that must follow the length prefix.
"""

from __future__ import annotations

import codecs
import json
import pickletools
import re
import struct
from collections.abc import Mapping
from typing import Any, NoReturn

from registry.errors import ForbiddenFile
from registry.validation.source import ByteSource
from registry.validation.strict_json import reject_constant

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
TEXT_EXTRAS: frozenset[str] = frozenset(
    {
        "README.md",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "chat_template.jinja",
        "chat_template.json",
        "vocab.json",
        "merges.txt",
    }
)
#: AdapterHub's weights and head files: allowed only in an AdapterHub adapter
#: (:mod:`registry.validation.adapterhub`), where the strict parsers read them whole.
HUB_SAFETENSORS: frozenset[str] = frozenset(
    {"adapter.safetensors", "model_head.safetensors", "model_adapter_fusion.safetensors"}
)
HUB_JSON: frozenset[str] = frozenset({"head_config.json", "adapter_fusion_config.json"})
ALLOWED_NAMES: frozenset[str] = (
    frozenset({CONFIG_NAME, WEIGHTS_NAME}) | TEXT_EXTRAS | HUB_SAFETENSORS | HUB_JSON
)
HEAD_BYTES = 512
#: Default cap on a text extra other than the tokenizer's vocabulary files (model cards,
#: tokenizer_config.json, special_tokens_map.json, chat templates ...).
MAX_TEXT_BYTES = 8 * 1024 * 1024
#: Default cap on the files that hold a whole vocabulary (Gemma 3's tokenizer.json is 33 MB).
MAX_TOKENIZER_BYTES = 40 * 1024 * 1024
VOCABULARY_FILES: frozenset[str] = frozenset({"tokenizer.json", "vocab.json", "merges.txt"})

#: The AdapterHub ``adapters`` library's default (pickle) weights file, refused with its fix.
ADAPTERHUB_PICKLE_NAME = "pytorch_adapter.bin"
ADAPTERHUB_PICKLE_FIX = (
    "pickle-format weights are not accepted; save with "
    "model.save_adapter(dir, name, use_safetensors=True), or convert locally with "
    "`adapter-registry adapters convert DIR`"
)
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
_ARCHIVE_MAGIC: tuple[bytes, ...] = (
    b"PK\x03\x04",  # zip (torch.save since 1.6, .npz, .pt)
    b"PK\x05\x06",  # empty zip
    b"PK\x07\x08",  # spanned zip
    b"\x1f\x8b",  # gzip
    b"\xfd7zXZ\x00",  # xz
    b"7z\xbc\xaf\x27\x1c",  # 7z
    b"BZh",  # bzip2
    b"\x28\xb5\x2f\xfd",  # zstd
)
# Opcodes that call what GLOBAL/INST imported (or end a complete pickle).
_PICKLE_CALL_OPS = frozenset({"INST", "OBJ", "REDUCE", "NEWOBJ", "BUILD", "STOP"})
_IMPORT_ARG = re.compile(r"[A-Za-z_][\w.]* [A-Za-z_][\w.]*")


def _forbid(name: str, reason: str, detail: str) -> NoReturn:
    raise ForbiddenFile(detail, reason=reason, context={"file": name[:255]})


def _unsafe_name(name: str) -> bool:
    return (
        not name
        or len(name) > 255
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or ".." in name
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
    )


def looks_like_safetensors(head: bytes) -> bool:
    """Return True when ``head`` starts like a safetensors file: a sane u64 length, then ``{``."""
    if len(head) < 9 or head[8:9] != b"{":
        return False
    header_len: int = struct.unpack("<Q", head[:8])[0]
    return header_len < (1 << 40)


def _binary_pickle(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and 1 <= head[1] <= 5


def _text_pickle(head: bytes) -> bool:
    """Detect a protocol 0/1 pickle: valid opcodes that import a callable (``GLOBAL``/``INST``
    with ``module name`` arguments) and then call it, stop, or run to the end of ``head``.

    Protocol 0/1 pickles can only reach a callable through ``GLOBAL``/``INST``; ordinary text fails
    within a few bytes (``#``, ``{``, ``-`` are not opcodes, and letters that are opcodes need
    well-formed arguments), so prose and JSON are not flagged.
    """
    ops: set[str] = set()
    imports = False
    clean_end = True
    try:
        for opcode, arg, _pos in pickletools.genops(head):
            ops.add(opcode.name)
            if opcode.name in ("GLOBAL", "INST") and isinstance(arg, str):
                imports = imports or _IMPORT_ARG.fullmatch(arg) is not None
            if opcode.name == "STOP":
                break
    except Exception:  # genops raises ValueError and friends on a non-opcode: stop there
        clean_end = False
    return imports and (clean_end or bool(ops & _PICKLE_CALL_OPS))


def _archive(head: bytes) -> bool:
    if head.startswith(_ARCHIVE_MAGIC):
        return True
    # POSIX tar: "ustar" at offset 257.
    return head[257:262] == b"ustar"


def check_file_allowed(name: str, head: bytes) -> None:
    """Refuse a file by name and by its first bytes (``head``: at least the first 512 bytes).

    Content checks run before the name allow-list, so a pickle or an archive is reported as such
    under any name (including ``adapter_model.safetensors`` and ``README.md``). For text extras
    only the head is checked here; :func:`check_text_extra` checks the whole content.

    Raises:
        ForbiddenFile: reasons ``forbidden_name``, ``pickle``, ``archive``, ``binary``.
    """
    if _unsafe_name(name):
        _forbid(name, "forbidden_name", "unsafe file name")
    if name == ADAPTERHUB_PICKLE_NAME:
        _forbid(name, "pickle", ADAPTERHUB_PICKLE_FIX)
    if name.lower().endswith(_PICKLE_SUFFIXES):
        _forbid(name, "pickle", "pickle-format weights are not accepted; use safetensors")
    if (name == WEIGHTS_NAME or name in HUB_SAFETENSORS) and looks_like_safetensors(head):
        return  # the strict parser decides the rest
    if _binary_pickle(head) or _text_pickle(head):
        _forbid(name, "pickle", "pickle content is not accepted")
    if _archive(head):
        _forbid(name, "archive", "archives are not accepted")
    if name not in ALLOWED_NAMES:
        _forbid(name, "forbidden_name", f"file {name[:80]!r} is not in the allowed file set")
    if name in TEXT_EXTRAS or name == CONFIG_NAME or name in HUB_JSON:
        _check_text_head(name, head)


def _check_text_head(name: str, head: bytes) -> None:
    if b"\x00" in head:
        _forbid(name, "binary", "NUL byte in a text file")
    try:
        # final=False: the head may end in the middle of a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        _forbid(name, "binary", "text file is not UTF-8")


def _discard(_pairs: list[tuple[str, Any]]) -> None:
    # Only the syntax is checked: dropping each object once decoded keeps the peak memory lower.
    return None


def check_text_extras(
    files: Mapping[str, ByteSource], *, max_text_bytes: int, max_tokenizer_bytes: int
) -> None:
    """Every text extra (model card, tokenizer files) within its size and sound as text; the
    size is checked before a byte is read.

    Raises:
        ForbiddenFile: ``too_large``, ``binary``, ...
    """
    for name in sorted(TEXT_EXTRAS & files.keys()):
        src = files[name]
        limit = text_limit(
            name, max_text_bytes=max_text_bytes, max_tokenizer_bytes=max_tokenizer_bytes
        )
        if src.size > limit:  # refuse before reading the bytes
            raise ForbiddenFile(
                f"{name} larger than {limit} bytes",
                reason="too_large",
                context={"file": name, "size": src.size, "limit": limit},
            )
        check_text_extra(name, src.read_at(0, src.size), max_bytes=limit)


def text_limit(name: str, *, max_text_bytes: int, max_tokenizer_bytes: int) -> int:
    """The size cap of the text extra ``name``."""
    return max_tokenizer_bytes if name in VOCABULARY_FILES else max_text_bytes


def check_text_extra(name: str, data: bytes, *, max_bytes: int = MAX_TEXT_BYTES) -> None:
    """Check a whole text extra: size cap, UTF-8 without NUL, and JSON syntax for ``.json`` files.

    Raises:
        ForbiddenFile: reasons ``too_large``, ``binary``, ``malformed_json``.
    """
    if len(data) > max_bytes:
        _forbid(name, "too_large", f"text file larger than {max_bytes} bytes")
    if b"\x00" in data:
        _forbid(name, "binary", "NUL byte in a text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _forbid(name, "binary", "text file is not UTF-8")
    if name.endswith(".json"):
        try:
            parsed: Any = json.loads(
                text, object_pairs_hook=_discard, parse_constant=reject_constant
            )
        except (ValueError, RecursionError):
            _forbid(name, "malformed_json", "JSON file does not parse")
        del parsed
