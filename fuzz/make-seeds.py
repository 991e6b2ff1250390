#!/usr/bin/env python3
"""Write the seed corpora under fuzz/corpus/ (run from anywhere).

decode/ and dispatch/ are binary inputs in each target's input layout (see
the top of fuzz_decode.c and fuzz_dispatch.c); cfg/ is copied from the
sample config and tests/data/cfg.  The output is committed; rerun this
after changing a layout or the test data, and commit the difference.
"""
import os
import shutil
import struct

FUZZ = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(FUZZ)

PING, ECHO, INFO, STATS, TIME = range(5)

# Indexes into max_frames[] of each target.
DEC_MF = {0: 0, 8: 3, 64: 7, 4096: 10, 'default': 12, 'u32max': 15}
DIS_MF = {64: 6, 8192: 10, 'default': 12}


def frame(body):
    return struct.pack('>I', len(body)) + body


def req(op, rid, payload=b'', version=1, flags=0):
    return frame(struct.pack('>BBHI', version, op, flags, rid) + payload)


def decode_seed(mf, splits, stream):
    """max_frame index, chunk sizes (bytes of size-1), the stream."""
    return bytes([DEC_MF[mf], len(splits)]) + \
        bytes(s - 1 for s in splits) + stream


PROBE_ALL = 7  # proto_error with any status, undecoded frames, short buffers


def dispatch_seed(mf, stream, ctx=0, fill=False, payload_msg=False,
                  probes=0):
    opts = DIS_MF[mf] << 4 | ctx | (4 if fill else 0) | \
        (8 if payload_msg else 0)
    return bytes([opts, probes]) + stream


ALL_OPS = (req(PING, 1) + req(ECHO, 2, b'hello') + req(INFO, 3) +
           req(STATS, 4) + req(TIME, 5) + req(0x05, 6) + req(0x80, 7) +
           req(0xff, 0xffffffff))
SHORT = b''.join(frame(bytes([1, ECHO, 0, 0, 0, 0, 0][:n]))
                 for n in (0, 1, 2, 3, 4, 7))
BAD = (req(PING, 10, version=2) + req(PING, 11, version=0) +
       req(ECHO, 12, b'x', flags=1) + req(PING, 13, b'no') +
       req(INFO, 14, b'no') + req(STATS, 15, b'no') + req(TIME, 16, b'no') +
       req(PING, 17))
UTF8 = b'a' + 'é'.encode() * 2100  # byte 4096 continues a sequence

DECODE = {
    'ping-bytewise': decode_seed('default', [], req(PING, 7)),
    'echo-split': decode_seed('default', [3, 1, 7], req(ECHO, 0x01020304,
                                                       b'hello')),
    'pipelined': decode_seed('default', [5], ALL_OPS),
    'pipelined-whole': decode_seed('default', [255], ALL_OPS),
    'short-headers': decode_seed('default', [2, 9], SHORT + req(PING, 1)),
    'bad-version-flags': decode_seed('default', [13], BAD),
    'partial-tail': decode_seed('default', [4], req(PING, 1) +
                                req(ECHO, 2, b'abcdef')[:9]),
    'max-frame-edge': decode_seed(64, [16, 50], req(ECHO, 1, b'a' * 56) +
                                  req(ECHO, 2, b'b' * 57)),
    'oversize-prefix': decode_seed('default', [1], req(PING, 1) +
                                   b'\xff\xff\xff\xff' + req(PING, 2)),
    'max-frame-zero': decode_seed(0, [3], frame(b'') + req(PING, 1)),
    'max-frame-u32': decode_seed('u32max', [2], req(PING, 1) +
                                 b'\xff\xff\xff\xfe\x01'),
}

DISPATCH = {
    'all-opcodes': dispatch_seed('default', ALL_OPS),
    'all-opcodes-no-ctx': dispatch_seed('default', ALL_OPS, ctx=1),
    'all-opcodes-no-callbacks': dispatch_seed('default', ALL_OPS, ctx=2),
    'all-opcodes-overrun': dispatch_seed('default', ALL_OPS, ctx=3),
    'info-stats-fill': dispatch_seed('default', req(INFO, 1) +
                                     req(STATS, 2), fill=True),
    'short-headers': dispatch_seed('default', SHORT + req(PING, 1)),
    'bad-requests': dispatch_seed('default', BAD),
    'bad-requests-payload-msg': dispatch_seed('default', BAD,
                                              payload_msg=True),
    'long-utf8-msg': dispatch_seed(8192, req(ECHO, 1, UTF8, version=2) +
                                   req(ECHO, 2, b'ok'), payload_msg=True),
    'echo-large': dispatch_seed(8192, req(ECHO, 9, bytes(range(256)) * 20)),
    'too-large': dispatch_seed(64, req(PING, 1) + req(ECHO, 2, b'z' * 60) +
                               req(PING, 3)),
    'partial-tail': dispatch_seed('default', req(TIME, 1) +
                                  req(ECHO, 2, b'abc')[:10]),
    'probes-all-opcodes': dispatch_seed('default', ALL_OPS + req(6, 8) +
                                        req(7, 9) + req(8, 10),
                                        probes=PROBE_ALL),
    'probes-overrun': dispatch_seed('default', ALL_OPS, ctx=3,
                                    probes=PROBE_ALL),
    'probes-fill': dispatch_seed('default', req(INFO, 1) + req(STATS, 2),
                                 fill=True, probes=PROBE_ALL),
    'probes-bad-requests': dispatch_seed('default', SHORT + BAD,
                                         probes=PROBE_ALL),
}


# Configurations the test data lacks: escapes, access lists, includes.
CFG = {
    'x-escapes.conf': b'user = "a\\"b\\\\c";\ngroup = "tab\\there";\n'
                      b'pid_file = "/run/x\\x41" ".pid";\n',
    'x-newline-string.conf': b'user = "line1\\nline2";\n',
    'x-empty-user.conf': b'user = "";\ngroup = "g";\n',
    'x-access-mixed.conf': b'access: {\n  allow = ( "10.0.0.0/8", '
                           b'"::ffff:10.0.0.0/104", "0.0.0.0/0" );\n'
                           b'  deny = [ "10.1.2.3/32", "fe80::/10", "::/0" ];\n'
                           b'};\nmax_connections_per_source = 10;\n',
    'x-access-too-many.conf': b'access: { deny = [ ' +
                              b', '.join(b'"10.0.0.%d"' % i
                                         for i in range(65)) + b' ]; };\n',
    'x-access-bad.conf': b'access: { allow = "10.0.0.0/8"; };\n',
    'x-include-self.conf': b'workers = 1;\n@include "socketd.conf"\n',
    'x-numbers.conf': b'workers = 0x10;\nqueue_size = 1024L;\n'
                      b'max_frame_size = 0x100000;\nbacklog = 1;\n'
                      b'timeouts: { idle = 0.0015; read = 1e3; };\n',
    'x-listen-forms.conf': b'listen = [ "[fe80::1%eth0]:1", "[::]:65535", '
                           b'"*:1", "host-name_1.example:80" ];\n',
    'x-restart-diff.conf': b'listen = [ "[::1]:7411", "127.0.0.1:7411" ];\n'
                           b'workers = 2;\nqueue_size = 2;\nbacklog = 2;\n'
                           b'log: { target = "syslog"; };\nuser = "u";\n'
                           b'group = "g";\npid_file = "/p";\n',
}

# fuzz_pubsub: the whole input goes to the payload parsers, then it is cut
# at 0xff bytes into filter a, filter b and topic t.
PUBSUB = {
    'sub-ok': struct.pack('>IBBH', 7, 1, 0, 6) + b'chat.>',
    'sub-bad-len': struct.pack('>IBBH', 7, 0, 0, 9) + b'chat.>',
    'pub-ok': struct.pack('>H', 10) + b'chat.lobby' + b'hello',
    'unsub': struct.pack('>I', 3),
    'fields-gt': b'chat.>\xffchat.*\xffchat.lobby',
    'fields-star': b'*.b\xffa.*\xffa.b',
    'fields-dollar': b'>\xff$SYS.>\xff$SYS.x',
    'fields-deep': b'a.*.c.>\xffa.b.*.d.e\xffa.b.c.d.e',
    'fields-bad': b'a..b\xff*x\xff>',
}


def write_dir(name, seeds):
    d = os.path.join(FUZZ, 'corpus', name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for fname, data in seeds.items():
        with open(os.path.join(d, fname), 'wb') as f:
            f.write(data)


def main():
    write_dir('decode', DECODE)
    write_dir('dispatch', DISPATCH)
    write_dir('pubsub', PUBSUB)
    cfg = {'socketd.conf': open(os.path.join(TOP, 'config', 'socketd.conf'),
                                'rb').read()}
    data = os.path.join(TOP, 'tests', 'data', 'cfg')
    for fname in sorted(os.listdir(data)):
        with open(os.path.join(data, fname), 'rb') as f:
            cfg[fname] = f.read()
    cfg.update(CFG)
    write_dir('cfg', cfg)


if __name__ == '__main__':
    main()
