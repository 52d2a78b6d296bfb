//! The browser challenge at the edge: who is asked, the interstitial page,
//! the verification endpoint and the clearance cookie. The tokens themselves
//! are `levee_challenge`'s; this module is the policy and the HTTP around them.
//!
//! Never challenged: exempt paths (APIs, monitoring), allow-listed networks
//! (staff, verified crawlers), clients with a valid clearance. A GET or HEAD
//! that accepts HTML gets the page; other GETs (API clients, feeds) get 429
//! with `Retry-After`; any other method gets 503 with `Retry-After`, never a
//! redirect that would drop its body.

pub(crate) use crate::answer::Answer;
use crate::answer::Why;
use crate::metrics::{Metrics, Reason};
use crate::state::{Site, State};
use crate::Verdict;
use levee_challenge as lc;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// Where the page sends a solution.
pub(crate) const VERIFY_PATH: &str = "/.levee/challenge/verify";
/// Where the no-JavaScript fallback's refresh goes.
pub(crate) const WAIT_PATH: &str = "/.levee/challenge/wait";
/// The clearance cookie.
pub(crate) const COOKIE: &str = "levee_clearance";

/// The parts of a request the policy looks at.
pub(crate) struct Req<'a> {
    pub method: &'a [u8],
    /// `Authorization` field, if any.
    pub authorization: Option<&'a [u8]>,
    /// The edge has marked this client abusive (harder challenge).
    pub marked: bool,
    /// Path and query, normalised.
    pub target: &'a levee_http::target::Target,
    pub accept: Option<&'a [u8]>,
    pub cookies: Vec<&'a [u8]>,
    pub user_agent: &'a [u8],
    pub client: IpAddr,
    pub https: bool,
}

fn cookie_value<'a>(cookies: &[&'a [u8]], name: &str) -> Option<&'a str> {
    levee_http::fields::cookie_value(cookies.iter().copied(), name)
        .and_then(|v| std::str::from_utf8(v).ok())
}

fn query<'a>(q: &'a str, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    levee_http::target::query_param(q, key)
}

use levee_http::target::{encode_component, safe_return};

fn now_s() -> u64 {
    crate::clock::unix_ms() / 1000
}

/// Why a request would be challenged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Not asked: only the challenge's own endpoints are answered.
    No,
    /// The site's policy asks (mode `always`, or `auto` under attack): exempt
    /// paths, allow-listed networks, staff and clearances pass.
    Policy,
    /// A challenge rule of the adaptive defense matched: only staff,
    /// allow-listed networks and clearances pass (exempt paths do not).
    Rule,
}

/// Staff (allow-listed network or staff token) or verified (valid clearance), if either.
pub(crate) fn trusted(
    state: &State,
    site: &Site,
    req: &Req<'_>,
) -> Option<crate::admission::Class> {
    use crate::admission::Class;
    let policy = &site.challenge;
    if policy.allow.iter().any(|c| c.contains(req.client)) {
        return Some(Class::Staff);
    }
    if let Some(t) = req.authorization.and_then(|a| a.strip_prefix(b"Bearer ")) {
        let t = t.trim_ascii();
        if !t.is_empty()
            && policy
                .staff_tokens
                .iter()
                .any(|s| !s.is_empty() && ct_eq(s.as_bytes(), t))
        {
            return Some(Class::Staff);
        }
    }
    if let Some(c) = cookie_value(&req.cookies, COOKIE) {
        if lc::check_clearance(
            &state.keys,
            c,
            &site.name,
            req.client,
            req.user_agent,
            now_s(),
        )
        .is_ok()
        {
            return Some(Class::Verified);
        }
    }
    None
}

/// Decide whether `req` must be challenged; `None` lets it through.
/// `trusted` is what [`trusted`] found for it.
/// Whether an `Accept` value asks for a page (a browser's navigation).
pub(crate) fn wants_html(accept: Option<&[u8]>) -> bool {
    accept.is_some_and(|a| a.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

/// Whether `path` is one of the challenge's own endpoints.
pub(crate) fn own_path(path: &str) -> bool {
    path == VERIFY_PATH || path == WAIT_PATH
}

pub(crate) fn decide(
    state: &State,
    site: &Site,
    spent: &Mutex<lc::SpentSet>,
    metrics: &Metrics,
    req: &Req<'_>,
    want: Want,
    trusted: Option<crate::admission::Class>,
) -> Option<Answer> {
    let policy = &site.challenge;
    let target = req.target.as_str();
    let path = req.target.path();
    let q = req.target.query().unwrap_or("");
    if path == VERIFY_PATH {
        return Some(verify(state, site, spent, metrics, req, q));
    }
    if path == WAIT_PATH && policy.noscript_fallback {
        return Some(wait(state, site, spent, metrics, req, q));
    }
    if want == Want::No || trusted.is_some() {
        return None;
    }
    if want == Want::Policy && policy.exempt_paths.iter().any(|p| req.target.path_under(p)) {
        return None;
    }
    let now = now_s();
    let retry = vec![("retry-after", "5".to_string())];
    let html = wants_html(req.accept);
    if req.method != b"GET" && req.method != b"HEAD" {
        return Some(Answer {
            status: 503,
            headers: retry,
            content_type: "text/plain; charset=utf-8",
            body: "503 Service Unavailable: this site is checking visitors; retry in a few seconds (levee)\n".into(),
            verdict: Verdict::Challenge,
            why: Why::Defense(Reason::ChallengeNonGet),
            close: false,
            delay: None,
        });
    }
    if !html {
        return Some(Answer {
            status: 429,
            headers: retry,
            content_type: "text/plain; charset=utf-8",
            body: "429 Too Many Requests: this site is checking visitors; retry in a few seconds (levee)\n".into(),
            verdict: Verdict::Challenge,
            why: Why::Defense(Reason::ChallengeNonHtml),
            close: false,
            delay: None,
        });
    }
    Some(page(state, site, metrics, req, target, now))
}

fn page(
    state: &State,
    site: &Site,
    metrics: &Metrics,
    req: &Req<'_>,
    target: &str,
    now: u64,
) -> Answer {
    let mut nonce = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce);
    let extra = if req.marked {
        site.challenge.marked_extra_bits
    } else {
        0
    };
    let bits = site.challenge.bits.saturating_add(extra).min(28);
    let token = lc::issue(&state.keys, &site.name, req.client, now, bits, nonce);
    metrics.challenges_issued.fetch_add(1, Ordering::Relaxed);
    // Inside an inline script: `<`, `>` and `&` as JSON escapes, so that a
    // target can never close the script element.
    let ret = serde_json::to_string(target)
        .unwrap_or_else(|_| "\"/\"".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let text = html_escape(&site.challenge.text);
    let expected = 1u64 << bits.min(40);
    let fallback = if site.challenge.noscript_fallback {
        let wait = site.challenge.fallback_wait.as_duration().as_secs();
        let url = format!(
            "{WAIT_PATH}?t={token}&amp;r={}",
            html_escape(&encode_component(target))
        );
        format!("<noscript><meta http-equiv=\"refresh\" content=\"{}; url={url}\"><p>Without JavaScript: please wait {wait} seconds; this page continues by itself.</p></noscript>", wait + 1)
    } else {
        "<noscript><p>This check needs JavaScript. Please enable it and reload the page.</p></noscript>".to_string()
    };
    Answer {
        status: 403,
        headers: vec![("x-levee-challenge", "1".into())],
        content_type: "text/html; charset=utf-8",
        body: INTERSTITIAL
            .replace("{{TEXT}}", &text)
            .replace("{{TOKEN}}", &token)
            .replace("{{BITS}}", &bits.to_string())
            .replace("{{EXPECTED}}", &expected.to_string())
            .replace("{{RETURN}}", &ret)
            .replace("{{VERIFY}}", VERIFY_PATH)
            .replace("{{NOSCRIPT}}", &fallback),
        verdict: Verdict::Challenge,
        why: Why::Defense(Reason::Challenge),
        close: false,
        delay: None,
    }
}

fn verify(
    state: &State,
    site: &Site,
    spent: &Mutex<lc::SpentSet>,
    metrics: &Metrics,
    req: &Req<'_>,
    q: &str,
) -> Answer {
    let now = now_s();
    let token = query(q, "t").unwrap_or_default();
    let counter: u64 = query(q, "c")
        .and_then(|c| c.parse().ok())
        .unwrap_or(u64::MAX);
    let result = {
        let mut s = spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lc::verify(
            &state.keys,
            &mut s,
            &token,
            counter,
            &site.name,
            req.client,
            now,
            state.challenge_ttl_s,
        )
    };
    let ttl = site.challenge.clearance_ttl.as_duration().as_secs();
    settle(
        state,
        site,
        metrics,
        req,
        q,
        now,
        result,
        ttl,
        "challenge_solved",
    )
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The no-JavaScript path: a browser that waited `fallback_wait` on the page
/// gets a short clearance. The token still proves the page was fetched, from
/// this prefix, long enough ago; it costs a bot time instead of CPU.
fn wait(
    state: &State,
    site: &Site,
    spent: &Mutex<lc::SpentSet>,
    metrics: &Metrics,
    req: &Req<'_>,
    q: &str,
) -> Answer {
    let now = now_s();
    let token = query(q, "t").unwrap_or_default();
    let waited = site.challenge.fallback_wait.as_duration().as_secs();
    let result = {
        let mut s = spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lc::verify_waited(
            &state.keys,
            &mut s,
            &token,
            &site.name,
            req.client,
            now,
            state.challenge_ttl_s,
            waited,
        )
    };
    let ttl = site
        .challenge
        .fallback_clearance_ttl
        .as_duration()
        .as_secs();
    settle(
        state,
        site,
        metrics,
        req,
        q,
        now,
        result,
        ttl,
        "challenge_waited",
    )
}

/// A verified solution earns a clearance and a redirect back; a refused one, a 403 naming why.
#[allow(clippy::too_many_arguments)]
fn settle(
    state: &State,
    site: &Site,
    metrics: &Metrics,
    req: &Req<'_>,
    q: &str,
    now: u64,
    result: Result<lc::Solved, lc::ChallengeError>,
    ttl: u64,
    reason: &'static str,
) -> Answer {
    match result {
        Ok(solved) => {
            metrics.challenge_solved(now.saturating_sub(solved.issued_s));
            site.tally.solved_after(now.saturating_sub(solved.issued_s));
            let c = lc::clearance(
                &state.keys,
                &site.name,
                req.client,
                req.user_agent,
                now,
                ttl,
            );
            let secure = if req.https { "; Secure" } else { "" };
            Answer {
                status: 303,
                headers: vec![
                    (
                        "set-cookie",
                        format!(
                            "{COOKIE}={c}; Path=/; Max-Age={ttl}; HttpOnly; SameSite=Lax{secure}"
                        ),
                    ),
                    (
                        "location",
                        safe_return(q.split('&').find_map(|kv| kv.strip_prefix("r="))),
                    ),
                ],
                content_type: "text/plain; charset=utf-8",
                body: "Thank you. Continuing…\n".into(),
                verdict: Verdict::Allow,
                why: Why::Note(reason),
                close: false,
                delay: None,
            }
        }
        Err(e) => {
            metrics.challenge_failed(e);
            Answer {
                status: 403,
                headers: vec![("x-levee-challenge", "1".into())],
                content_type: "text/plain; charset=utf-8",
                body: format!("403 Forbidden: the check did not succeed ({e}). Reload the page to try again (levee)\n"),
                verdict: Verdict::Block,
                why: Why::Defense(Reason::ChallengeFailed),
                close: false,
            delay: None,
            }
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The interstitial: self-contained (no third-party resources), readable
/// text, a live region for screen readers, a visible progress bar; the work
/// runs in a Web Worker with a small SHA-256 of its own.
const INTERSTITIAL: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>One moment…</title>
<style>body{font-family:system-ui,sans-serif;max-width:34em;margin:15vh auto;padding:0 1.2em;color:#1d1d1f;line-height:1.5}
h1{font-size:1.4em}progress{width:100%;height:1.1em}.small{color:#555;font-size:.9em}</style></head>
<body><main>
<h1>One moment, please</h1>
<p>{{TEXT}}</p>
<progress id="bar" max="100" value="0" aria-label="Progress"></progress>
<p id="status" role="status" aria-live="polite">Working…</p>
{{NOSCRIPT}}
<p class="small">Protected by Levee. Your browser does a small calculation (about {{EXPECTED}} hashes); nothing is installed and no data leaves your device.</p>
</main>
<script id="levee-challenge" data-token="{{TOKEN}}" data-bits="{{BITS}}">
(function(){
var token="{{TOKEN}}",bits={{BITS}},ret={{RETURN}},expected={{EXPECTED}};
var worker=function(){
var K=new Int32Array([0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2]);
var W=new Int32Array(64),H=new Int32Array(8),M=new Uint8Array(128);
function sha(bytes,n){H[0]=0x6a09e667;H[1]=0xbb67ae85;H[2]=0x3c6ef372;H[3]=0xa54ff53a;H[4]=0x510e527f;H[5]=0x9b05688c;H[6]=0x1f83d9ab;H[7]=0x5be0cd19;
var l=((n+9+63)>>6)<<6,m=M;m.fill(0);for(var q=0;q<n;q++)m[q]=bytes[q];m[n]=0x80;var bl=n*8;m[l-4]=bl>>>24;m[l-3]=bl>>>16;m[l-2]=bl>>>8;m[l-1]=bl;
for(var o=0;o<l;o+=64){for(var i=0;i<16;i++)W[i]=(m[o+4*i]<<24)|(m[o+4*i+1]<<16)|(m[o+4*i+2]<<8)|m[o+4*i+3];
for(i=16;i<64;i++){var x=W[i-15],y=W[i-2];var s0=((x>>>7)|(x<<25))^((x>>>18)|(x<<14))^(x>>>3);var s1=((y>>>17)|(y<<15))^((y>>>19)|(y<<13))^(y>>>10);W[i]=(W[i-16]+s0+W[i-7]+s1)|0;}
var a=H[0],b=H[1],c=H[2],d=H[3],e=H[4],f=H[5],g=H[6],h=H[7];
for(i=0;i<64;i++){var S1=((e>>>6)|(e<<26))^((e>>>11)|(e<<21))^((e>>>25)|(e<<7));var ch=(e&f)^(~e&g);var t1=(h+S1+ch+K[i]+W[i])|0;
var S0=((a>>>2)|(a<<30))^((a>>>13)|(a<<19))^((a>>>22)|(a<<10));var mj=(a&b)^(a&c)^(b&c);var t2=(S0+mj)|0;h=g;g=f;f=e;e=(d+t1)|0;d=c;c=b;b=a;a=(t1+t2)|0;}
H[0]=(H[0]+a)|0;H[1]=(H[1]+b)|0;H[2]=(H[2]+c)|0;H[3]=(H[3]+d)|0;H[4]=(H[4]+e)|0;H[5]=(H[5]+f)|0;H[6]=(H[6]+g)|0;H[7]=(H[7]+h)|0;}
return H;}
function zeros(H){var z=0;for(var i=0;i<8;i++){var w=H[i]>>>0;if(w===0){z+=32;continue;}return z+Math.clz32(w);}return z;}
onmessage=function(ev){var t=ev.data.token,bits=ev.data.bits,buf=new Uint8Array(128);for(var i=0;i<t.length;i++)buf[i]=t.charCodeAt(i);buf[t.length]=58;
for(var c=0;;c++){var s=String(c),n=t.length+1;for(var j=0;j<s.length;j++)buf[n+j]=s.charCodeAt(j);n+=s.length;
if(zeros(sha(buf,n))>=bits){postMessage({done:true,counter:c});return;}if(c%20000===0)postMessage({done:false,counter:c});}};
};
var status=document.getElementById("status"),bar=document.getElementById("bar"),start=Date.now();
var blob=new Blob(["("+worker.toString()+")()"],{type:"text/javascript"});
var w=new Worker(URL.createObjectURL(blob));
w.onmessage=function(ev){
 if(ev.data.done){bar.value=100;status.textContent="Done. Loading the page…";
  location.replace("{{VERIFY}}?t="+encodeURIComponent(token)+"&c="+ev.data.counter+"&r="+encodeURIComponent(ret));}
 else{var p=Math.min(95,Math.round(100*(1-Math.exp(-ev.data.counter/expected))));bar.value=p;status.textContent="Working… "+p+"%";}
};
w.postMessage({token:token,bits:bits});
})();
</script></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found() {
        let c: Vec<&[u8]> = vec![b"a=1; levee_clearance=XYZ; b=2"];
        assert_eq!(cookie_value(&c, COOKIE), Some("XYZ"));
        assert_eq!(cookie_value(&c, "levee"), None);
    }
}
