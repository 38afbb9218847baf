package emulator

import "net/http"

// Route patterns of the account's kinds, as they appear in Stats.
const (
	patternAccountConfiguration = "/v1/Configuration"
	patternAccountWebhooks      = "/v1/Configuration/Webhooks"
	patternAddresses            = "/v1/Configuration/Addresses"
	patternAddress              = "/v1/Configuration/Addresses/{Sid}"
	patternCredentials          = "/v1/Credentials"
	patternCredential           = "/v1/Credentials/{Sid}"
)

// accountRoute maps the /v1/Configuration… and /v1/Credentials… routes
// (parts are the unescaped path segments, "v1" first).
func accountRoute(r *http.Request, parts []string, notFound route) route {
	byMethod := func(pattern string, p routeParams, handlers map[string]handlerFunc) route {
		h, ok := handlers[r.Method]
		if !ok {
			return route{pattern: pattern, err: newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed")}
		}
		return route{pattern: pattern, handler: h, params: p}
	}
	switch {
	case len(parts) == 2 && parts[1] == "Configuration":
		return byMethod(patternAccountConfiguration, routeParams{}, map[string]handlerFunc{
			http.MethodGet: (*Server).fetchAccountConfiguration, http.MethodPost: (*Server).updateAccountConfiguration})
	case len(parts) == 3 && parts[1] == "Configuration" && parts[2] == "Webhooks":
		return byMethod(patternAccountWebhooks, routeParams{}, map[string]handlerFunc{
			http.MethodGet: (*Server).fetchAccountWebhooks, http.MethodPost: (*Server).updateAccountWebhooks})
	case len(parts) == 3 && parts[1] == "Configuration" && parts[2] == "Addresses":
		return byMethod(patternAddresses, routeParams{}, map[string]handlerFunc{
			http.MethodGet: (*Server).listAddresses, http.MethodPost: (*Server).createAddress})
	case len(parts) == 4 && parts[1] == "Configuration" && parts[2] == "Addresses":
		return byMethod(patternAddress, routeParams{sid: parts[3]}, map[string]handlerFunc{
			http.MethodGet: (*Server).fetchAddress, http.MethodPost: (*Server).updateAddress, http.MethodDelete: (*Server).deleteAddress})
	case len(parts) == 2 && parts[1] == "Credentials":
		return byMethod(patternCredentials, routeParams{}, map[string]handlerFunc{
			http.MethodGet: (*Server).listCredentials, http.MethodPost: (*Server).createCredential})
	case len(parts) == 3 && parts[1] == "Credentials":
		return byMethod(patternCredential, routeParams{sid: parts[2]}, map[string]handlerFunc{
			http.MethodGet: (*Server).fetchCredential, http.MethodPost: (*Server).updateCredential, http.MethodDelete: (*Server).deleteCredential})
	}
	return notFound
}
