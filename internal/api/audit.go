package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/chaindock/chaindock/internal/store"
)

// auditInfo is filled in by handlers as they learn what a request is about.
type auditInfo struct {
	actor  string
	org    string
	detail string
	// hidden marks a request for a resource that exists but that the
	// caller may not see: it answers 404, and is audited as denied.
	hidden bool
}

func auditFrom(ctx context.Context) *auditInfo {
	ai, _ := ctx.Value(auditKey).(*auditInfo)
	return ai
}

// auditHidden records that the caller asked for something of org it may not
// know exists.
func auditHidden(r *http.Request, org, what string) {
	if ai := auditFrom(r.Context()); ai != nil {
		ai.org, ai.hidden, ai.detail = org, true, what+" is not visible to the caller"
	}
}

// setAuditOrg records which organization a request concerns.
func setAuditOrg(r *http.Request, org string) {
	if ai := auditFrom(r.Context()); ai != nil {
		ai.org = org
	}
}

// audit writes an entry for every state-changing request, and for every
// request refused for want of authentication or permission.
func (a *API) audit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ai := &auditInfo{actor: "anonymous"}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), auditKey, ai)))
		status := ww.Status()
		changing := r.Method != http.MethodGet && r.Method != http.MethodHead
		refused := status == http.StatusUnauthorized || status == http.StatusForbidden || ai.hidden
		if !changing && !refused {
			return
		}
		result := "succeeded"
		switch {
		case refused:
			result = "denied"
		case status >= 400:
			result = "failed"
		}
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = r.URL.Path
		}
		e := store.AuditEntry{
			Time: time.Now().UTC(), Actor: ai.actor, Org: ai.org,
			Action:   r.Method + " " + route,
			Resource: strings.TrimPrefix(r.URL.Path, "/api/v1/"),
			Result:   result, Status: status, Source: r.RemoteAddr, Detail: ai.detail,
		}
		// The entry is written even if the client has gone.
		if err := a.opts.Store.AppendAudit(context.WithoutCancel(r.Context()), e); err != nil {
			a.opts.Log.Error("append audit entry", "err", err, "action", e.Action)
		}
	})
}
