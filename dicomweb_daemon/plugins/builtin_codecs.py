"""Dropin for the built-in codecs (ICodec): discovered by twisted.plugin like any site's own codec."""
from dicomweb_daemon.codecs.imagecodecs_codec import ImagecodecsDecoders
from dicomweb_daemon.codecs.libjpeg_encoder import LibjpegTurboEncoder
from dicomweb_daemon.codecs.providers import (
    Jpeg2000Codec,
    JpegLsCodec,
    NativeCodec,
    PillowJpegCodec,
    PydicomDecoders,
    RleCodec,
)

native_codec = NativeCodec()
pydicom_decoders = PydicomDecoders()
rle_codec = RleCodec()
jpeg_ls_codec = JpegLsCodec()
jpeg_2000_codec = Jpeg2000Codec()
pillow_jpeg_codec = PillowJpegCodec()
imagecodecs_decoders = ImagecodecsDecoders()
libjpeg_turbo_encoder = LibjpegTurboEncoder()
