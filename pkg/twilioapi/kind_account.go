package twilioapi

import (
	"strings"

	"github.com/convsync/convsync/pkg/resource"
	openapi "github.com/twilio/twilio-go/rest/conversations/v1"
)

// ---- the account's kinds (no parent) ----
//
// /v1/Configuration and /v1/Configuration/Webhooks are singletons of the
// account (ID /Configuration, /Configuration/Webhooks); address
// configurations and push credentials are collections of the account.
// Twilio documents no rate limit for them; writes share one account
// bucket, which is never wrong.
//
// Secrets (a credential's certificate, private_key and secret) arrive as
// references (resource.SecretRef): the value is read from its file or
// environment variable here, as the request is built, and lives only in
// twilio-go's params until it is sent. Errors name the field and where the
// value was to be read from, never the value.

const accountBucket = "account"

func accountKey(string) string { return accountBucket }

// accountSingletonObserved is the common part of an account singleton's
// Observed: its ID is its path.
func accountSingletonObserved(kind resource.Kind, url *string) resource.Observed {
	o := resource.Observed{Kind: kind, SID: resource.SingletonID(kind, ""), Values: resource.Values{}, Extra: resource.Values{}}
	setIf(o.Extra, "url", url)
	return o
}

// accountSingleton builds the adapter of a singleton of the account.
func accountSingleton[T any, P any](kind resource.Kind, route string,
	fetch func(api *openapi.ApiService) (*T, error),
	update func(api *openapi.ApiService, p *P) (*T, error),
	setters map[string]paramSetter[P],
	observed func(x *T) resource.Observed,
) *kindAdapter {
	k := singletonAdapter(kind, route,
		func(api *openapi.ApiService, _ string) (*T, error) { return fetch(api) },
		func(api *openapi.ApiService, _ string, p *P) (*T, error) { return update(api, p) },
		setters,
		func(x *T, _ string) resource.Observed { return observed(x) })
	k.limiterKey, k.updateLimiterKey = accountKey, accountKey
	return k
}

// ---- /v1/Configuration ----

type accountConfigParams = openapi.UpdateConfigurationParams

var configurationAdapter = accountSingleton(resource.KindConfiguration, "/v1/Configuration",
	(*openapi.ApiService).FetchConfiguration,
	(*openapi.ApiService).UpdateConfiguration,
	map[string]paramSetter[accountConfigParams]{
		"default_service_sid":           stringParam((*accountConfigParams).SetDefaultChatServiceSid),
		"default_messaging_service_sid": stringParam((*accountConfigParams).SetDefaultMessagingServiceSid),
		"default_inactive_timer":        stringParam((*accountConfigParams).SetDefaultInactiveTimer),
		"default_closed_timer":          stringParam((*accountConfigParams).SetDefaultClosedTimer),
	},
	func(x *openapi.ConversationsV1Configuration) resource.Observed {
		o := accountSingletonObserved(resource.KindConfiguration, x.Url)
		setIf(o.Values, "default_service_sid", x.DefaultChatServiceSid)
		setIf(o.Values, "default_messaging_service_sid", x.DefaultMessagingServiceSid)
		setIf(o.Values, "default_inactive_timer", x.DefaultInactiveTimer)
		setIf(o.Values, "default_closed_timer", x.DefaultClosedTimer)
		return o
	})

// ---- /v1/Configuration/Webhooks ----

type accountWebhookParams = openapi.UpdateConfigurationWebhookParams

var accountWebhooksAdapter = accountSingleton(resource.KindAccountWebhooks, "/v1/Configuration/Webhooks",
	(*openapi.ApiService).FetchConfigurationWebhook,
	(*openapi.ApiService).UpdateConfigurationWebhook,
	map[string]paramSetter[accountWebhookParams]{
		"target":           lowerParam((*accountWebhookParams).SetTarget),
		"pre_webhook_url":  stringParam((*accountWebhookParams).SetPreWebhookUrl),
		"post_webhook_url": stringParam((*accountWebhookParams).SetPostWebhookUrl),
		"method":           upperParam((*accountWebhookParams).SetMethod),
		"filters":          clearableSetParam((*accountWebhookParams).SetFilters),
	},
	func(x *openapi.ConversationsV1ConfigurationWebhook) resource.Observed {
		o := accountSingletonObserved(resource.KindAccountWebhooks, x.Url)
		if x.Target != nil {
			o.Values["target"] = strings.ToLower(*x.Target)
		}
		setIf(o.Values, "pre_webhook_url", x.PreWebhookUrl)
		setIf(o.Values, "post_webhook_url", x.PostWebhookUrl)
		if x.Method != nil {
			o.Values["method"] = strings.ToUpper(*x.Method)
		}
		setSetIf(o.Values, "filters", x.Filters)
		return o
	})

// secretParam reads a secret field's value from where its reference points
// and puts it in the params; the error names the source, never a value.
func secretParam[P any](set func(*P, string) *P) paramSetter[P] {
	return func(p *P, s string) error {
		value, err := resource.ReadSecret(s)
		if err != nil {
			return err
		}
		set(p, string(value))
		return nil
	}
}

// ---- /v1/Configuration/Addresses ----
//
// Twilio's request enum for AutoCreation.WebhookMethod is lower case and its
// answers upper case (../shared/twilio-kinds.md §1.7): convsync sends lower
// case and compares case-folded. The {Sid} segment takes the IG SID or the
// address itself.

type addressCreateParams = openapi.CreateConfigurationAddressParams
type addressUpdateParams = openapi.UpdateConfigurationAddressParams

var addressCreateSetters = map[string]paramSetter[addressCreateParams]{
	"type":                                   lowerParam((*addressCreateParams).SetType),
	"address":                                stringParam((*addressCreateParams).SetAddress),
	"address_country":                        stringParam((*addressCreateParams).SetAddressCountry),
	"friendly_name":                          stringParam((*addressCreateParams).SetFriendlyName),
	"auto_creation.enabled":                  boolParam((*addressCreateParams).SetAutoCreationEnabled),
	"auto_creation.type":                     lowerParam((*addressCreateParams).SetAutoCreationType),
	"auto_creation.conversation_service_sid": stringParam((*addressCreateParams).SetAutoCreationConversationServiceSid),
	"auto_creation.webhook_url":              stringParam((*addressCreateParams).SetAutoCreationWebhookUrl),
	"auto_creation.webhook_method":           lowerParam((*addressCreateParams).SetAutoCreationWebhookMethod),
	"auto_creation.webhook_filters":          setParam((*addressCreateParams).SetAutoCreationWebhookFilters),
	"auto_creation.studio_flow_sid":          stringParam((*addressCreateParams).SetAutoCreationStudioFlowSid),
	"auto_creation.studio_retry_count":       intParam((*addressCreateParams).SetAutoCreationStudioRetryCount),
}

var addressUpdateSetters = map[string]paramSetter[addressUpdateParams]{
	"friendly_name":                          stringParam((*addressUpdateParams).SetFriendlyName),
	"auto_creation.enabled":                  boolParam((*addressUpdateParams).SetAutoCreationEnabled),
	"auto_creation.type":                     lowerParam((*addressUpdateParams).SetAutoCreationType),
	"auto_creation.conversation_service_sid": stringParam((*addressUpdateParams).SetAutoCreationConversationServiceSid),
	"auto_creation.webhook_url":              stringParam((*addressUpdateParams).SetAutoCreationWebhookUrl),
	"auto_creation.webhook_method":           lowerParam((*addressUpdateParams).SetAutoCreationWebhookMethod),
	"auto_creation.webhook_filters":          clearableSetParam((*addressUpdateParams).SetAutoCreationWebhookFilters),
	"auto_creation.studio_flow_sid":          stringParam((*addressUpdateParams).SetAutoCreationStudioFlowSid),
	"auto_creation.studio_retry_count":       intParam((*addressUpdateParams).SetAutoCreationStudioRetryCount),
}

var addressConfigurationAdapter = &kindAdapter{
	kind:             resource.KindAddressConfiguration,
	collectionRoute:  "/v1/Configuration/Addresses",
	itemRoute:        "/v1/Configuration/Addresses/{Sid}",
	limiterKey:       accountKey,
	updateLimiterKey: accountKey,
	firstPage: func(api *openapi.ApiService, _ string) (listPage, error) {
		resp, err := api.PageConfigurationAddress(&openapi.ListConfigurationAddressParams{PageSize: pageSizeOf(resource.KindAddressConfiguration)}, "", "")
		if err != nil {
			return listPage{}, err
		}
		return addressPage(resp), nil
	},
	nextPage: func(api *openapi.ApiService, nextURL string) (listPage, error) {
		resp, err := getPage[openapi.ListConfigurationAddressResponse](api, nextURL)
		if err != nil {
			return listPage{}, err
		}
		return addressPage(resp), nil
	},
	fetch: func(api *openapi.ApiService, _, id string) (resource.Observed, error) {
		x, err := api.FetchConfigurationAddress(id)
		if err != nil {
			return resource.Observed{}, err
		}
		return addressObserved(x), nil
	},
	create: func(_ string, v resource.Values, _ CallOptions) (sendFunc, error) {
		params, err := buildParams(resource.KindAddressConfiguration, "create", v, createFields(resource.KindAddressConfiguration), addressCreateSetters)
		if err != nil {
			return nil, err
		}
		return func(api *openapi.ApiService) (resource.Observed, error) {
			x, err := api.CreateConfigurationAddress(params)
			if err != nil {
				return resource.Observed{}, err
			}
			return addressObserved(x), nil
		}, nil
	},
	update: func(_, sid string, v resource.Values, _ CallOptions) (sendFunc, error) {
		params, err := buildParams(resource.KindAddressConfiguration, "update", v, updateFields(resource.KindAddressConfiguration), addressUpdateSetters)
		if err != nil {
			return nil, err
		}
		return func(api *openapi.ApiService) (resource.Observed, error) {
			x, err := api.UpdateConfigurationAddress(sid, params)
			if err != nil {
				return resource.Observed{}, err
			}
			return addressObserved(x), nil
		}, nil
	},
	delete: func(api *openapi.ApiService, _, sid string, _ CallOptions) error {
		return api.DeleteConfigurationAddress(sid)
	},
}

func addressPage(resp *openapi.ListConfigurationAddressResponse) listPage {
	p := listPage{next: deref(resp.Meta.NextPageUrl)}
	for i := range resp.AddressConfigurations {
		p.items = append(p.items, addressObserved(&resp.AddressConfigurations[i]))
	}
	return p
}

// addressObserved converts Twilio's answer. auto_creation is untyped in
// Twilio's contract: its leaves are flattened, then brought to convsync's
// canonical form (filters as a set, the method's case as the schema spells
// it, the retry count as a number); a leaf the schema does not know goes to
// Extra.
func addressObserved(x *openapi.ConversationsV1ConfigurationAddress) resource.Observed {
	o := resource.Observed{
		Kind:        resource.KindAddressConfiguration,
		SID:         deref(x.Sid),
		Values:      resource.Values{},
		DateCreated: timeOf(x.DateCreated),
		DateUpdated: timeOf(x.DateUpdated),
		Extra:       resource.Values{},
	}
	if x.Type != nil {
		o.Values["type"] = strings.ToLower(*x.Type)
	}
	setIf(o.Values, "address", x.Address)
	setIf(o.Values, "address_country", x.AddressCountry)
	setIf(o.Values, "friendly_name", x.FriendlyName)
	setIf(o.Extra, "url", x.Url)
	schema := resource.Schema(resource.KindAddressConfiguration)
	if x.AutoCreation != nil {
		flattenLeaves(schema, "auto_creation", *x.AutoCreation, o.Values, o.Extra)
	}
	for name, text := range o.Values {
		if !strings.HasPrefix(name, "auto_creation.") {
			continue
		}
		if canonical, err := schema.Field(name).Canonical(text); err == nil {
			o.Values[name] = canonical
		}
	}
	return o
}

// ---- /v1/Credentials ----
//
// Twilio never returns certificate, private_key or secret; sandbox comes
// back as the string "True" or "False" although it is sent as a boolean.

type credentialCreateParams = openapi.CreateCredentialParams
type credentialUpdateParams = openapi.UpdateCredentialParams

var credentialCreateSetters = map[string]paramSetter[credentialCreateParams]{
	"type":          lowerParam((*credentialCreateParams).SetType),
	"friendly_name": stringParam((*credentialCreateParams).SetFriendlyName),
	"sandbox":       boolParam((*credentialCreateParams).SetSandbox),
	"certificate":   secretParam((*credentialCreateParams).SetCertificate),
	"private_key":   secretParam((*credentialCreateParams).SetPrivateKey),
	"secret":        secretParam((*credentialCreateParams).SetSecret),
}

var credentialUpdateSetters = map[string]paramSetter[credentialUpdateParams]{
	"friendly_name": stringParam((*credentialUpdateParams).SetFriendlyName),
	"sandbox":       boolParam((*credentialUpdateParams).SetSandbox),
	"certificate":   secretParam((*credentialUpdateParams).SetCertificate),
	"private_key":   secretParam((*credentialUpdateParams).SetPrivateKey),
	"secret":        secretParam((*credentialUpdateParams).SetSecret),
}

var pushCredentialAdapter = &kindAdapter{
	kind:             resource.KindPushCredential,
	collectionRoute:  "/v1/Credentials",
	itemRoute:        "/v1/Credentials/{Sid}",
	limiterKey:       accountKey,
	updateLimiterKey: accountKey,
	firstPage: func(api *openapi.ApiService, _ string) (listPage, error) {
		resp, err := api.PageCredential(&openapi.ListCredentialParams{PageSize: pageSizeOf(resource.KindPushCredential)}, "", "")
		if err != nil {
			return listPage{}, err
		}
		return credentialPage(resp), nil
	},
	nextPage: func(api *openapi.ApiService, nextURL string) (listPage, error) {
		resp, err := getPage[openapi.ListCredentialResponse](api, nextURL)
		if err != nil {
			return listPage{}, err
		}
		return credentialPage(resp), nil
	},
	fetch: func(api *openapi.ApiService, _, id string) (resource.Observed, error) {
		x, err := api.FetchCredential(id)
		if err != nil {
			return resource.Observed{}, err
		}
		return credentialObserved(x), nil
	},
	create: func(_ string, v resource.Values, _ CallOptions) (sendFunc, error) {
		params, err := buildParams(resource.KindPushCredential, "create", v, createFields(resource.KindPushCredential), credentialCreateSetters)
		if err != nil {
			return nil, err
		}
		return func(api *openapi.ApiService) (resource.Observed, error) {
			x, err := api.CreateCredential(params)
			if err != nil {
				return resource.Observed{}, err
			}
			return credentialObserved(x), nil
		}, nil
	},
	update: func(_, sid string, v resource.Values, _ CallOptions) (sendFunc, error) {
		params, err := buildParams(resource.KindPushCredential, "update", v, updateFields(resource.KindPushCredential), credentialUpdateSetters)
		if err != nil {
			return nil, err
		}
		return func(api *openapi.ApiService) (resource.Observed, error) {
			x, err := api.UpdateCredential(sid, params)
			if err != nil {
				return resource.Observed{}, err
			}
			return credentialObserved(x), nil
		}, nil
	},
	delete: func(api *openapi.ApiService, _, sid string, _ CallOptions) error {
		return api.DeleteCredential(sid)
	},
}

func credentialPage(resp *openapi.ListCredentialResponse) listPage {
	p := listPage{next: deref(resp.Meta.NextPageUrl)}
	for i := range resp.Credentials {
		p.items = append(p.items, credentialObserved(&resp.Credentials[i]))
	}
	return p
}

func credentialObserved(x *openapi.ConversationsV1Credential) resource.Observed {
	o := resource.Observed{
		Kind:        resource.KindPushCredential,
		SID:         deref(x.Sid),
		Values:      resource.Values{},
		DateCreated: timeOf(x.DateCreated),
		DateUpdated: timeOf(x.DateUpdated),
		Extra:       resource.Values{},
	}
	if x.Type != nil {
		o.Values["type"] = strings.ToLower(*x.Type)
	}
	setIf(o.Values, "friendly_name", x.FriendlyName)
	if x.Sandbox != nil {
		switch strings.ToLower(*x.Sandbox) {
		case "true":
			o.Values["sandbox"] = "true"
		case "false":
			o.Values["sandbox"] = "false"
		default:
			o.Extra["sandbox"] = *x.Sandbox
		}
	}
	setIf(o.Extra, "url", x.Url)
	return o
}
