# Varnish in front of image-proxy, with purge by tag through vmod_xkey
# (Debian 12: apt-get install varnish varnish-modules). A starting point:
# the root's varnish_test.go runs it against a real image-proxy and proves
# that one purge removes every cached variant of one photo and no other.
#
#   varnishd -f /etc/varnish/image-proxy.vcl -a :80 -s malloc,1g
#
# Purge every variant of a photo, from this machine (the tag is the first
# 16 hex characters of the SHA-256 of its path, as requests name it):
#
#   curl -X PURGE -H "xkey-purge: $(printf '%s' photos/cat.jpg | sha256sum | cut -c1-16)" http://127.0.0.1/
#
# The answer is "200 Purged N objects", with N also in the xkey-purged header.

vcl 4.1;

import xkey;

backend image_proxy {
    .host = "127.0.0.1";
    .port = "8000";
    # A render of a large original may take seconds; image-proxy bounds its
    # own queue (IMAGE_PROXY_QUEUE_TIMEOUT) and answers 503 past it.
    .first_byte_timeout = 60s;
}

# Who may purge. Widen it to the hosts that run your deletion scripts.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.xkey-purge) {
            return (synth(400, "PURGE needs an xkey-purge header naming the tags"));
        }
        # Space-separated tags are all purged. xkey.softpurge instead keeps
        # the objects for grace and revalidation (If-None-Match: a 304
        # from image-proxy costs no render).
        set req.http.xkey-purged = xkey.purge(req.http.xkey-purge);
        return (synth(200, "Purged " + req.http.xkey-purged + " objects"));
    }
    if (req.method == "GET" || req.method == "HEAD") {
        # image-proxy reads no cookies; the built-in VCL would not cache a
        # request that carries one.
        unset req.http.Cookie;
        # format=auto answers Vary: Accept. Reduce Accept to the three
        # answers image-proxy can give, so browsers share three objects
        # instead of one per Accept string.
        if (req.url ~ "[?&]format=auto(&|$)") {
            if (req.http.Accept ~ "image/avif") {
                set req.http.Accept = "image/avif";
            } elsif (req.http.Accept ~ "image/webp") {
                set req.http.Accept = "image/webp";
            } else {
                set req.http.Accept = "*/*";
            }
        }
    }
    # Everything else (POST /convert, /bulk, /purge, /events/s3, Authorization)
    # falls through to the built-in VCL, which passes it uncached.
}

sub vcl_backend_response {
    # vmod_xkey indexes an object by the tags in its xkey header (spaces or
    # commas between them). image-proxy names them in Surrogate-Key (Fastly)
    # and Cache-Tag (Cloudflare): keep the one copy xkey reads.
    if (beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
    }
    unset beresp.http.Surrogate-Key;
    unset beresp.http.Cache-Tag;
}

sub vcl_deliver {
    # The tags are for the cache, not the visitor. xkey has read them from
    # the stored object already; this only edits the response.
    unset resp.http.xkey;
}

sub vcl_synth {
    # The PURGE answers in plain text ("Purged 3 objects"), with the count
    # in a header for scripts, instead of the built-in error page.
    if (req.method == "PURGE") {
        if (req.http.xkey-purged) {
            set resp.http.xkey-purged = req.http.xkey-purged;
        }
        set resp.http.Content-Type = "text/plain; charset=utf-8";
        set resp.body = resp.reason + {"
"};
        return (deliver);
    }
}
