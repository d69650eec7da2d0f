// The Go peer of bench/bench.py: net/http/httputil's reverse proxy, standard library only.
// Plain HTTP/1.1, or with -cert and -key TLS where net/http offers h2 and http/1.1 by ALPN.
// Upstream keep-alive like tuned nginx: up to 256 idle connections to the registry.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "host:port to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:5000", "the registry's URL")
	cert := flag.String("cert", "", "PEM certificate chain: serve TLS (h2 and http/1.1 by ALPN)")
	key := flag.String("key", "", "PEM private key for -cert")
	flag.Parse()

	target, err := url.Parse(*upstream)
	if err != nil {
		log.Fatalf("goproxy: -upstream: %v", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.MaxIdleConns = 1024
	transport.MaxIdleConnsPerHost = 256
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = transport
	director := proxy.Director
	proxy.Director = func(r *http.Request) { // like nginx's X-Forwarded-Proto $scheme
		director(r)
		if r.TLS != nil {
			r.Header.Set("X-Forwarded-Proto", "https")
		} else {
			r.Header.Set("X-Forwarded-Proto", "http")
		}
	}
	server := &http.Server{Addr: *listen, Handler: proxy}
	if *cert != "" {
		log.Fatal(server.ListenAndServeTLS(*cert, *key))
	}
	log.Fatal(server.ListenAndServe())
}
