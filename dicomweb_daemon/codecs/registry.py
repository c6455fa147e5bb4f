"""Which codec decodes or encodes a transfer syntax: the ICodec plugins, asked in name order."""
from __future__ import annotations

import functools

from ..interfaces import ICodec
from ..registry import discover
from .errors import NoDecoder, NoEncoder


@functools.lru_cache(maxsize=1)
def codecs() -> tuple:
    """Every ICodec provider (built-in dropins and a site's own), discovered once per process."""
    found = discover(ICodec)
    return tuple(found[name] for name in sorted(found))


def decoder_for(transfer_syntax: str):
    """The codec that decodes ``transfer_syntax``; NoDecoder when none does (we cannot read that data)."""
    for codec in codecs():
        if codec.can_decode(transfer_syntax):
            return codec
    raise NoDecoder(f"no codec decodes the transfer syntax {transfer_syntax} (decodable: {', '.join(decodable())})")


def encoder_for(transfer_syntax: str):
    """The codec that encodes ``transfer_syntax``; NoEncoder when none does (we cannot answer in it)."""
    for codec in codecs():
        if codec.can_encode(transfer_syntax):
            return codec
    raise NoEncoder(f"no codec encodes the transfer syntax {transfer_syntax} (encodable: {', '.join(encodable())})")


def _candidates(attribute: str) -> set[str]:
    from pydicom.uid import AllTransferSyntaxes

    return set(AllTransferSyntaxes) | {ts for c in codecs() for ts in getattr(c, attribute, ())}


def decodable() -> list[str]:
    return sorted((ts for ts in _candidates("decodes") if any(c.can_decode(ts) for c in codecs())), key=_uid_key)


def encodable() -> list[str]:
    return sorted((ts for ts in _candidates("encodes") if any(c.can_encode(ts) for c in codecs())), key=_uid_key)


def _uid_key(value: str) -> tuple:
    return tuple(int(p) for p in value.split(".") if p.isdigit())
