"""The model store's GGUF header reader agrees with the llama.cpp project's own reader (the `gguf`
package, used here as the reference) and refuses broken files with NotGguf, never a crash or a
huge read."""

from __future__ import annotations

import mmap
import shutil
import struct
from pathlib import Path

import gguf
import pytest

from server.config import embedded_model_path
from server.core import gguf_info
from server.core.gguf_info import NotGguf


def reference(path: Path) -> dict:
    reader = gguf.GGUFReader(str(path))

    def value(key, default=None):
        field = reader.fields.get(key)
        return field.contents() if field is not None else default

    arch = value("general.architecture")
    return {
        "architecture": arch, "name": value("general.name"),
        "quantization": gguf.LlamaFileType(value("general.file_type")).name.removeprefix("MOSTLY_"),
        "parameters": sum(int(t.n_elements) for t in reader.tensors),
        "context_length": value(f"{arch}.context_length"), "n_layer": value(f"{arch}.block_count"),
        "n_embd": value(f"{arch}.embedding_length"),
        "n_head": value(f"{arch}.attention.head_count"),
        "n_head_kv": value(f"{arch}.attention.head_count_kv"),
        "chat_template": value("tokenizer.chat_template"),
    }


def test_the_embedded_model_reads_as_the_reference_reader_reads_it():
    path = Path(embedded_model_path())
    info = gguf_info.read(path)
    assert {key: getattr(info, key) for key in reference(path)} == reference(path)
    assert info.size_label == "135M"


def write(path: Path, endianess=gguf.GGUFEndian.LITTLE) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama", endianess=endianess)
    writer.add_name("Tiny Test")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_context_length(2048)
    writer.add_block_count(2)
    writer.add_embedding_length(8)
    writer.add_head_count(2)
    writer.add_token_list(["<s>", "hello", "wörld"])  # an array of strings, skipped over
    writer.add_token_scores([0.0, -1.0, -2.0])  # an array of floats
    writer.add_tensor("token_embd.weight", gguf.np.zeros((3, 8), dtype=gguf.np.float32))
    writer.add_tensor("output.weight", gguf.np.zeros((8, 2, 4), dtype=gguf.np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize("endianess", [gguf.GGUFEndian.LITTLE, gguf.GGUFEndian.BIG])
def test_a_written_file_reads_back_in_either_byte_order(tmp_path, endianess):
    info = gguf_info.read(write(tmp_path / "tiny.gguf", endianess))
    assert (info.architecture, info.name, info.quantization) == ("llama", "Tiny Test", "Q8_0")
    assert (info.context_length, info.n_layer, info.n_embd, info.n_head) == (2048, 2, 8, 2)
    assert info.parameters == 3 * 8 + 8 * 2 * 4 and info.size_label == "88"
    assert info.chat_template is None


def test_a_file_cut_anywhere_in_its_header_is_not_gguf(tmp_path):
    path = write(tmp_path / "whole.gguf")
    whole = path.read_bytes()
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
        header = gguf_info._Header(view)
        header.read()
        header_end = header.at  # alignment padding and the tensor data follow
    for cut in sorted({5, 9, 17, 30, header_end // 3, header_end // 2, header_end - 9,
                       header_end - 1}):
        cut_file = tmp_path / f"cut{cut}.gguf"
        cut_file.write_bytes(whole[:cut])
        with pytest.raises(NotGguf):
            gguf_info.read(cut_file)


def test_counts_larger_than_the_file_are_refused_before_anything_is_read(tmp_path):
    hostile = tmp_path / "hostile.gguf"
    # Magic, version 3, 2**60 tensors and 2**60 key-value pairs: a loop over them would never end.
    hostile.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**60, 2**60) + b"\0" * 64)
    with pytest.raises(NotGguf, match="do not fit"):
        gguf_info.read(hostile)


def test_a_string_longer_than_the_file_is_refused(tmp_path):
    path = tmp_path / "long_string.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**62) + b"key")
    with pytest.raises(NotGguf, match="truncated"):
        gguf_info.read(path)


def test_version_1_files_are_refused_as_llama_cpp_refuses_them(tmp_path):
    path = tmp_path / "v1.gguf"
    shutil.copyfile(write(tmp_path / "v3.gguf"), path)
    with open(path, "r+b") as f:
        f.seek(4)
        f.write(struct.pack("<I", 1))
    with pytest.raises(NotGguf, match="version 1"):
        gguf_info.read(path)
