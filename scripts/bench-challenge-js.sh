#!/usr/bin/env bash
# Benchmark (not a test): the challenge page's own SHA-256 (the Web Worker's
# code, taken from crates/levee-edge/src/challenge.rs) under node: hashes per
# second, and a check of its digests against node's crypto.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v node >/dev/null || { echo "needs node" >&2; exit 2; }
python3 - "$ROOT/crates/levee-edge/src/challenge.rs" > /tmp/levee-sha-bench.js <<'PY'
import sys
src = open(sys.argv[1]).read()
a = src.index('var worker=function(){') + len('var worker=function(){')
b = src.index('onmessage=function(ev){')
print(src[a:b])
print('''
var crypto=require('crypto');
for (var len=0; len<120; len+=7){var s="";for(var i=0;i<len;i++)s+=String.fromCharCode(48+(i*7)%60);var b=new Uint8Array(128);for(i=0;i<len;i++)b[i]=s.charCodeAt(i);
var H=sha(b,len),hex="";for(i=0;i<8;i++)hex+=(H[i]>>>0).toString(16).padStart(8,"0");
if(hex!==crypto.createHash('sha256').update(s).digest('hex')){console.log("MISMATCH at length",len);process.exit(1);}}
var t="AbYAAAAAawvKag6f1lYksmrn3gUbZv9shsnosR3g35pEfeUbu95HOGw8NQ",buf=new Uint8Array(128);for(var i=0;i<t.length;i++)buf[i]=t.charCodeAt(i);buf[t.length]=58;
var start=Date.now(),N=1000000;
for(var c=0;c<N;c++){var s=String(c),n=t.length+1;for(var j=0;j<s.length;j++)buf[n+j]=s.charCodeAt(j);n+=s.length;zeros(sha(buf,n));}
var ms=Date.now()-start;console.log("digests match node's crypto; "+Math.round(N/ms*1000)+" hashes/s; 16 bits (65,536 hashes) takes about "+Math.round(65536/(N/ms))+" ms");
''')
PY
node /tmp/levee-sha-bench.js
