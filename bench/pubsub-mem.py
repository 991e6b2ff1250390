#!/usr/bin/env python3
"""RSS of a running socketd per connection: N connections that each PING
once (idle) or hold one subscription.

    pubsub-mem.py PORT PID N ping|sub [same]

'sub' subscribes connection i to room.i; with 'same', all to chat.lobby.
Needs N + a few descriptors on both sides (the daemon's max_connections
too).  Prints the RSS growth per connection after all answers arrived.
"""
import socket, struct, sys, time, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
port=int(sys.argv[1]); pid=int(sys.argv[2]); N=int(sys.argv[3]); mode=sys.argv[4]
def rss():
    for l in open(f'/proc/{pid}/status'):
        if l.startswith('VmRSS'): return int(l.split()[1])
def recvn(s,n):
    b=b''
    while len(b)<n: b+=s.recv(n-len(b))
    return b
base=rss(); socks=[]
for i in range(N):
    s=socket.create_connection(('127.0.0.1',port)); socks.append(s)
    if mode=='sub':
        f=(b'room.%d'%i) if len(sys.argv) < 6 else b'chat.lobby'
        p=struct.pack('>IBBH',1,0,0,len(f))+f
    else:
        p=b''
    op=0x10 if mode=='sub' else 0x00
    s.sendall(struct.pack('>IBBHI',8+len(p),1,op,0,1)+p)
for s in socks:
    l,=struct.unpack('>I',recvn(s,4)); recvn(s,l)
time.sleep(1.5)
after=rss()
print(f"{mode}: {N} connections: RSS {base} -> {after} KiB, {(after-base)*1024/N:.0f} B per connection")
