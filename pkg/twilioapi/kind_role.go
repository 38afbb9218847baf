package twilioapi

import (
	"github.com/convsync/convsync/pkg/resource"
	openapi "github.com/twilio/twilio-go/rest/conversations/v1"
)

// ---- roles (/v1/Services/{ServiceSid}/Roles) ----
//
// A create sends FriendlyName, Type and one Permission key per member of
// the permissions set. Twilio's update takes only Permission and replaces
// the whole set, so an update sends the full set and refuses every other
// field (friendly_name and type change by replacing the role).

var roleCreateSetters = map[string]paramSetter[openapi.CreateServiceRoleParams]{
	resource.FieldFriendlyName: stringParam((*openapi.CreateServiceRoleParams).SetFriendlyName),
	resource.FieldRoleType:     stringParam((*openapi.CreateServiceRoleParams).SetType),
	resource.FieldPermissions:  setParam((*openapi.CreateServiceRoleParams).SetPermission),
}

var roleUpdateSetters = map[string]paramSetter[openapi.UpdateServiceRoleParams]{
	resource.FieldPermissions: setParam((*openapi.UpdateServiceRoleParams).SetPermission),
}

// needPermissions refuses a role write without a permission: Twilio
// requires Permission on both create and update, and twilio-go cannot send
// an empty list.
func needPermissions(op string, v resource.Values) error {
	members, err := resource.ParseSet(v[resource.FieldPermissions])
	if err != nil || len(members) > 0 {
		return nil // buildParams reports a bad set
	}
	return inputErrorf("%s role: permissions must hold at least one permission (Twilio requires Permission)", op)
}

var roleAdapter = &kindAdapter{
	kind:             resource.KindRole,
	collectionRoute:  "/v1/Services/{ServiceSid}/Roles",
	itemRoute:        "/v1/Services/{ServiceSid}/Roles/{Sid}",
	limiterKey:       func(parentSID string) string { return parentSID },
	updateLimiterKey: func(parentSID string) string { return parentSID },
	firstPage: func(api *openapi.ApiService, parentSID string) (listPage, error) {
		resp, err := api.PageServiceRole(parentSID, &openapi.ListServiceRoleParams{PageSize: pageSizeOf(resource.KindRole)}, "", "")
		if err != nil {
			return listPage{}, err
		}
		return rolePage(resp, parentSID), nil
	},
	nextPage: func(api *openapi.ApiService, nextURL string) (listPage, error) {
		resp, err := getPage[openapi.ListServiceRoleResponse](api, nextURL)
		if err != nil {
			return listPage{}, err
		}
		return rolePage(resp, ""), nil
	},
	fetch: func(api *openapi.ApiService, parentSID, id string) (resource.Observed, error) {
		x, err := api.FetchServiceRole(parentSID, id)
		if err != nil {
			return resource.Observed{}, err
		}
		return roleObserved(x, parentSID), nil
	},
	create: func(parentSID string, v resource.Values, _ CallOptions) (sendFunc, error) {
		params, err := buildParams(resource.KindRole, "create", v, createFields(resource.KindRole), roleCreateSetters)
		if err != nil {
			return nil, err
		}
		if err := needPermissions("create", v); err != nil {
			return nil, err
		}
		return func(api *openapi.ApiService) (resource.Observed, error) {
			x, err := api.CreateServiceRole(parentSID, params)
			if err != nil {
				return resource.Observed{}, err
			}
			return roleObserved(x, parentSID), nil
		}, nil
	},
	update: func(parentSID, sid string, v resource.Values, _ CallOptions) (sendFunc, error) {
		params, err := buildParams(resource.KindRole, "update", v, updateFields(resource.KindRole), roleUpdateSetters)
		if err != nil {
			return nil, err
		}
		if err := needPermissions("update", v); err != nil {
			return nil, err
		}
		return func(api *openapi.ApiService) (resource.Observed, error) {
			x, err := api.UpdateServiceRole(parentSID, sid, params)
			if err != nil {
				return resource.Observed{}, err
			}
			return roleObserved(x, parentSID), nil
		}, nil
	},
	delete: func(api *openapi.ApiService, parentSID, sid string, _ CallOptions) error {
		return api.DeleteServiceRole(parentSID, sid)
	},
}

func rolePage(resp *openapi.ListServiceRoleResponse, parentSID string) listPage {
	p := listPage{next: deref(resp.Meta.NextPageUrl)}
	for i := range resp.Roles {
		p.items = append(p.items, roleObserved(&resp.Roles[i], parentSID))
	}
	return p
}

// roleObserved converts Twilio's answer: permissions are a set (sorted, each
// once: Twilio's order means nothing); null fields are absent.
func roleObserved(x *openapi.ConversationsV1ServiceRole, parentSID string) resource.Observed {
	o := resource.Observed{
		Kind:        resource.KindRole,
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
	setIf(o.Values, resource.FieldFriendlyName, x.FriendlyName)
	setIf(o.Values, resource.FieldRoleType, x.Type)
	setSetIf(o.Values, resource.FieldPermissions, x.Permissions)
	setIf(o.Extra, "url", x.Url)
	return o
}
