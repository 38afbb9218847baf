package twilioapi

import (
	"github.com/convsync/convsync/pkg/resource"
	openapi "github.com/twilio/twilio-go/rest/conversations/v1"
)

// ---- users (/v1/Services/{ServiceSid}/Users) ----
//
// A create sends Identity, FriendlyName, Attributes and RoleSid; an update
// the same but Identity (a new identity means a new user). Writes and
// deletes carry X-Twilio-Webhook-Enabled: true when CallOptions asks.

var userCreateSetters = map[string]paramSetter[openapi.CreateServiceUserParams]{
	resource.FieldIdentity:     stringParam((*openapi.CreateServiceUserParams).SetIdentity),
	resource.FieldFriendlyName: stringParam((*openapi.CreateServiceUserParams).SetFriendlyName),
	resource.FieldAttributes:   stringParam((*openapi.CreateServiceUserParams).SetAttributes),
	resource.FieldRoleSID:      stringParam((*openapi.CreateServiceUserParams).SetRoleSid),
}

var userUpdateSetters = map[string]paramSetter[openapi.UpdateServiceUserParams]{
	resource.FieldFriendlyName: stringParam((*openapi.UpdateServiceUserParams).SetFriendlyName),
	resource.FieldAttributes:   stringParam((*openapi.UpdateServiceUserParams).SetAttributes),
	resource.FieldRoleSID:      stringParam((*openapi.UpdateServiceUserParams).SetRoleSid),
}

var userAdapter = &kindAdapter{
	kind:             resource.KindUser,
	collectionRoute:  "/v1/Services/{ServiceSid}/Users",
	itemRoute:        "/v1/Services/{ServiceSid}/Users/{Sid}",
	limiterKey:       func(parentSID string) string { return parentSID },
	updateLimiterKey: func(parentSID string) string { return parentSID },
	firstPage: func(api *openapi.ApiService, parentSID string) (listPage, error) {
		resp, err := api.PageServiceUser(parentSID, &openapi.ListServiceUserParams{PageSize: pageSizeOf(resource.KindUser)}, "", "")
		if err != nil {
			return listPage{}, err
		}
		return userPage(resp, parentSID), nil
	},
	nextPage: func(api *openapi.ApiService, nextURL string) (listPage, error) {
		resp, err := getPage[openapi.ListServiceUserResponse](api, nextURL)
		if err != nil {
			return listPage{}, err
		}
		return userPage(resp, ""), nil
	},
	// id is a SID or an identity (Twilio takes either in the path).
	fetch: func(api *openapi.ApiService, parentSID, id string) (resource.Observed, error) {
		x, err := api.FetchServiceUser(parentSID, id)
		if err != nil {
			return resource.Observed{}, err
		}
		return userObserved(x, parentSID), nil
	},
	create: func(parentSID string, v resource.Values, o CallOptions) (sendFunc, error) {
		params, err := buildParams(resource.KindUser, "create", v, createFields(resource.KindUser), userCreateSetters)
		if err != nil {
			return nil, err
		}
		params.XTwilioWebhookEnabled = webhookHeader(o)
		return func(api *openapi.ApiService) (resource.Observed, error) {
			x, err := api.CreateServiceUser(parentSID, params)
			if err != nil {
				return resource.Observed{}, err
			}
			return userObserved(x, parentSID), nil
		}, nil
	},
	update: func(parentSID, sid string, v resource.Values, o CallOptions) (sendFunc, error) {
		params, err := buildParams(resource.KindUser, "update", v, updateFields(resource.KindUser), userUpdateSetters)
		if err != nil {
			return nil, err
		}
		params.XTwilioWebhookEnabled = webhookHeader(o)
		return func(api *openapi.ApiService) (resource.Observed, error) {
			x, err := api.UpdateServiceUser(parentSID, sid, params)
			if err != nil {
				return resource.Observed{}, err
			}
			return userObserved(x, parentSID), nil
		}, nil
	},
	delete: func(api *openapi.ApiService, parentSID, sid string, o CallOptions) error {
		return api.DeleteServiceUser(parentSID, sid, &openapi.DeleteServiceUserParams{XTwilioWebhookEnabled: webhookHeader(o)})
	},
}

func userPage(resp *openapi.ListServiceUserResponse, parentSID string) listPage {
	p := listPage{next: deref(resp.Meta.NextPageUrl)}
	for i := range resp.Users {
		p.items = append(p.items, userObserved(&resp.Users[i], parentSID))
	}
	return p
}

// userObserved converts Twilio's answer: attributes are canonical JSON; null
// fields (a user without a role) are absent.
func userObserved(x *openapi.ConversationsV1ServiceUser, parentSID string) resource.Observed {
	o := resource.Observed{
		Kind:        resource.KindUser,
		SID:         deref(x.Sid),
		ParentSID:   deref(x.ChatServiceSid),
		Values:      resource.Values{},
		DateCreated: timeOf(x.DateCreated),
		DateUpdated: timeOf(x.DateUpdated),
		Extra:       resource.Values{},
	}
	if o.ParentSID == "" {
		o.ParentSID = parentSID
	}
	setIf(o.Values, resource.FieldIdentity, x.Identity)
	setIf(o.Values, resource.FieldFriendlyName, x.FriendlyName)
	setJSONIf(o.Values, resource.FieldAttributes, x.Attributes)
	setIf(o.Values, resource.FieldRoleSID, x.RoleSid)
	setBoolIf(o.Extra, "is_online", x.IsOnline)
	setBoolIf(o.Extra, "is_notifiable", x.IsNotifiable)
	setIf(o.Extra, "url", x.Url)
	return o
}
