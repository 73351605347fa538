#!/bin/sh
# make-corpus.sh: writes the seed corpus of fuzz_gguf, small valid GGUF files that
# reach every part of the reader and of what reads its result: no keys, every value
# type, arrays (nested too), llama-like, mixture-of-experts and sliding-window models,
# a split part, many tensor types. Python's standard library only; each seed stays
# under 64 KiB (the fuzzer's -max_len). Usage: fuzz/make-corpus.sh [DIR]
# (default fuzz/corpus). The seeds are checked in; rerun after changing this file.
set -eu
dir=${1:-$(dirname "$0")/corpus}
mkdir -p "$dir"
exec python3 - "$dir" <<'EOF'
import os
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
FMT = {U8: '<B', I8: '<b', U16: '<H', I16: '<h', U32: '<I', I32: '<i', F32: '<f',
       BOOL: '<B', U64: '<Q', I64: '<q', F64: '<d'}
# ggml type: (block size, bytes per block)
BLOCK = {0: (1, 4), 1: (1, 2), 2: (32, 18), 8: (32, 34), 12: (256, 144), 14: (256, 210),
         23: (256, 136), 30: (1, 2), 39: (32, 17)}


def gstr(x):
    b = x.encode()
    return struct.pack('<Q', len(b)) + b


def value(t, v):
    if t == STR:
        return gstr(v)
    if t == ARR:
        et, items = v
        return struct.pack('<IQ', et, len(items)) + b''.join(value(et, i) for i in items)
    return struct.pack(FMT[t], v)


def tensor_size(typ, ne):
    blk, nbytes = BLOCK[typ]
    n = 1
    for d in ne:
        n *= d
    return n // blk * nbytes


def gguf(kvs, tensors, version=3, align=32):
    out = b'GGUF' + struct.pack('<IQQ', version, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += gstr(k) + struct.pack('<I', t) + value(t, v)
    off = 0
    for name, typ, ne in tensors:
        out += gstr(name) + struct.pack('<I', len(ne))
        out += b''.join(struct.pack('<Q', d) for d in ne) + struct.pack('<IQ', typ, off)
        size = tensor_size(typ, ne)
        off += size + (-size) % align
    if tensors:
        out += b'\0' * ((-len(out)) % align)
    return out + b'\0' * off


def llama_layers(n, embd, ff, kv_width, wtype):
    t = []
    for i in range(n):
        p = 'blk.%d.' % i
        t += [(p + 'attn_norm.weight', 0, [embd]),
              (p + 'attn_q.weight', wtype, [embd, embd]),
              (p + 'attn_k.weight', wtype, [embd, kv_width]),
              (p + 'attn_v.weight', wtype, [embd, kv_width]),
              (p + 'attn_output.weight', wtype, [embd, embd]),
              (p + 'ffn_norm.weight', 0, [embd]),
              (p + 'ffn_gate.weight', wtype, [embd, ff]),
              (p + 'ffn_up.weight', wtype, [embd, ff]),
              (p + 'ffn_down.weight', wtype, [ff, embd])]
    return t


def vocab(n):
    return [('tokenizer.ggml.model', STR, 'llama'),
            ('tokenizer.ggml.tokens', ARR, (STR, ['t%d' % i for i in range(n)])),
            ('tokenizer.ggml.scores', ARR, (F32, [float(-i) for i in range(n)])),
            ('tokenizer.ggml.token_type', ARR, (I32, [1] * n))]


def llama():
    kvs = [('general.architecture', STR, 'llama'), ('general.name', STR, 'seed'),
           ('general.file_type', U32, 7), ('llama.block_count', U32, 2),
           ('llama.context_length', U32, 2048), ('llama.embedding_length', U32, 32),
           ('llama.feed_forward_length', U32, 64), ('llama.attention.head_count', U32, 4),
           ('llama.attention.head_count_kv', U32, 2), ('llama.rope.freq_base', F32, 1e4),
           ('llama.attention.layer_norm_rms_epsilon', F32, 1e-5)] + vocab(32)
    t = [('token_embd.weight', 1, [32, 32])] + llama_layers(2, 32, 64, 16, 8)
    t += [('output_norm.weight', 0, [32]), ('output.weight', 8, [32, 32])]
    return gguf(kvs, t)


def moe():
    kvs = [('general.architecture', STR, 'qwen3moe'), ('qwen3moe.block_count', U32, 2),
           ('qwen3moe.context_length', U32, 40960), ('qwen3moe.embedding_length', U32, 32),
           ('qwen3moe.feed_forward_length', U32, 64),
           ('qwen3moe.expert_feed_forward_length', U32, 32),
           ('qwen3moe.expert_count', U32, 4), ('qwen3moe.expert_used_count', U32, 2),
           ('qwen3moe.attention.head_count', U32, 4),
           ('qwen3moe.attention.head_count_kv', U32, 2),
           ('qwen3moe.attention.key_length', U32, 16),
           ('qwen3moe.attention.value_length', U32, 16), ('qwen3moe.vocab_size', U32, 64)]
    t = [('token_embd.weight', 8, [32, 64])]
    for i in range(2):
        p = 'blk.%d.' % i
        t += [(p + 'attn_q.weight', 8, [32, 64]), (p + 'attn_k.weight', 8, [32, 32]),
              (p + 'attn_v.weight', 8, [32, 32]), (p + 'attn_output.weight', 8, [64, 32]),
              (p + 'ffn_gate_inp.weight', 0, [32, 4]),
              (p + 'ffn_gate_exps.weight', 8, [32, 32, 4]),
              (p + 'ffn_up_exps.weight', 8, [32, 32, 4]),
              (p + 'ffn_down_exps.weight', 8, [32, 32, 4])]
    return gguf(kvs, t + [('output_norm.weight', 0, [32])])


def gemma2():
    kvs = [('general.architecture', STR, 'gemma2'), ('general.alignment', U32, 64),
           ('gemma2.block_count', U32, 4), ('gemma2.context_length', U64, 8192),
           ('gemma2.embedding_length', U32, 32),
           ('gemma2.feed_forward_length', ARR, (I32, [64, 64, 32, 32])),
           ('gemma2.attention.head_count', U32, 4),
           ('gemma2.attention.head_count_kv', ARR, (I32, [2, 2, 1, 1])),
           ('gemma2.attention.sliding_window', U32, 64),
           ('gemma2.attention.sliding_window_pattern', ARR, (BOOL, [1, 0, 1, 0]))]
    t = [('token_embd.weight', 30, [32, 16])] + llama_layers(4, 32, 32, 16, 1)
    return gguf(kvs, t, version=2, align=64)


def scalars():
    kvs = [('t.u8', U8, 200), ('t.i8', I8, -100), ('t.u16', U16, 60000),
           ('t.i16', I16, -30000), ('t.u32', U32, 4000000000), ('t.i32', I32, -2000000000),
           ('t.f32', F32, 0.5), ('t.bool', BOOL, 1), ('t.str', STR, 'hello'),
           ('t.u64', U64, 2 ** 64 - 1), ('t.i64', I64, -2 ** 63), ('t.f64', F64, 2.5e-3),
           ('general.architecture', STR, 'llama'), ('llama.block_count', U64, 1),
           ('llama.embedding_length', I16, 64)]
    return gguf(kvs, [])


def arrays():
    kvs = [('a.u8', ARR, (U8, [1, 2, 255])), ('a.i64', ARR, (I64, [-1, 2 ** 40])),
           ('a.f32', ARR, (F32, [1.5, -2.5, 1e30])), ('a.f64', ARR, (F64, [0.25])),
           ('a.bool', ARR, (BOOL, [0, 1])), ('a.str', ARR, (STR, ['', 'x', 'yz'])),
           ('a.empty', ARR, (U32, []))]
    return gguf(kvs, [])


def nested():
    inner = [(I32, [1, 2, 3]), (STR, ['a', 'b'])]
    kvs = [('n.two', ARR, (ARR, inner)),
           ('n.three', ARR, (ARR, [(ARR, [(U8, [7])]), (ARR, [])])),
           ('n.empty', ARR, (ARR, []))]
    return gguf(kvs, [])


def split_part():
    kvs = [('general.architecture', STR, 'llama'), ('split.no', U16, 0),
           ('split.count', U16, 3), ('split.tensors.count', I32, 5),
           ('llama.block_count', U32, 1), ('llama.embedding_length', U32, 32)]
    return gguf(kvs, [('token_embd.weight', 0, [32, 8]), ('blk.0.attn_q.weight', 1, [32, 32])])


def quant_types():
    kvs = [('general.architecture', STR, 'llama'), ('llama.block_count', U32, 1),
           ('llama.embedding_length', U32, 256), ('llama.attention.head_count', U32, 2)]
    t = [('blk.0.q4_k', 12, [256, 2]), ('blk.0.q6_k', 14, [256]), ('blk.0.iq4_xs', 23, [256]),
         ('blk.0.mxfp4', 39, [64, 2]), ('blk.0.q4_0', 2, [32, 3]), ('blk.0.bf16', 30, [3]),
         ('output.weight', 8, [256, 1, 1, 1]), ('empty', 0, [0, 5])]
    return gguf(kvs, t)


seeds = {'empty': gguf([], []), 'scalars': scalars(), 'arrays': arrays(),
         'nested': nested(), 'llama': llama(), 'moe': moe(), 'gemma2-swa': gemma2(),
         'split-part1': split_part(), 'quant-types': quant_types()}
for name, data in seeds.items():
    assert len(data) < 65536, name
    with open(os.path.join(sys.argv[1], name + '.gguf'), 'wb') as f:
        f.write(data)
    print('%-12s %6d bytes' % (name, len(data)))
EOF
