// Command gitserver is the lab's Git server: Git's own smart-HTTP server
// (git http-backend, from Debian's git package) behind Go's standard CGI handler, so the
// workspace can `git push` to it and Flux's source-controller can fetch from it over http://.
//
// A repository is made (bare, pushes allowed) the first time its path is asked for, so
// kindlab needs no exec into the container: `git push` to http://HOST:PORT/NAME.git works
// at once. Standard library only; the protocol is Git's, not ours.
package main

import (
	"log"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
)

// A repository's path: one segment ending in .git, nothing that could climb out of the root.
var repoPath = regexp.MustCompile(`^/([A-Za-z0-9][A-Za-z0-9._-]*\.git)(/.*)?$`)

func getenv(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func main() {
	root := getenv("GIT_PROJECT_ROOT", "/srv/git")
	listen := getenv("LISTEN", ":8080")
	backend := getenv("GIT_HTTP_BACKEND", "/usr/lib/git-core/git-http-backend")
	if err := os.MkdirAll(root, 0o755); err != nil {
		log.Fatalf("cannot make %s: %v", root, err)
	}
	cgiHandler := &cgi.Handler{
		Path: backend,
		Root: "/",
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	var creating sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		m := repoPath.FindStringSubmatch(r.URL.Path)
		if m == nil {
			http.Error(w, "not a repository path: use /NAME.git", http.StatusNotFound)
			return
		}
		dir := filepath.Join(root, m[1])
		creating.Lock()
		if _, err := os.Stat(filepath.Join(dir, "HEAD")); os.IsNotExist(err) {
			if out, err := exec.Command("git", "init", "--quiet", "--bare", "--initial-branch=main", dir).CombinedOutput(); err != nil {
				creating.Unlock()
				log.Printf("git init %s: %v: %s", dir, err, out)
				http.Error(w, "cannot create the repository", http.StatusInternalServerError)
				return
			}
			if out, err := exec.Command("git", "-C", dir, "config", "http.receivepack", "true").CombinedOutput(); err != nil {
				creating.Unlock()
				log.Printf("git config %s: %v: %s", dir, err, out)
				http.Error(w, "cannot configure the repository", http.StatusInternalServerError)
				return
			}
			log.Printf("created %s", dir)
		}
		creating.Unlock()
		log.Printf("%s %s", r.Method, r.URL.Path)
		cgiHandler.ServeHTTP(w, r)
	})
	log.Printf("serving %s on %s", root, listen)
	log.Fatal(http.ListenAndServe(listen, mux))
}
