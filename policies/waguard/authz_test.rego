# Tests for data.waguard.authz.decision.
#
# Every test_* rule must evaluate to true. Most tests replace the team data
# with the fixture below (with data.waguard.teams as fixture_teams), so they do
# not depend on the example teams.json; the test_example_data_* tests are the
# ones that check the shipped teams.json on purpose.
package waguard.authz_test

import rego.v1

import data.waguard.authz

# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

fixture_teams := {
	# Plain team: one of each list, no allow_contributor key at all.
	"alpha": {
		"accounts": ["111111111111"],
		"organizations": ["o-alphaorg0001"],
		"ous": ["ou-aaaa-11111111"],
	},
	# May grant CONTRIBUTOR; lens shares use their own OU list.
	"beta": {
		"accounts": ["222222222222"],
		"organizations": [],
		"ous": ["ou-bbbb-22222222"],
		"allow_contributor": true,
		"resource_overrides": {"lens": {"ous": ["ou-bbbb-lens0001"]}},
	},
	# allow_contributor set, but not to the boolean true.
	"gamma": {"ous": ["ou-cccc-33333333"], "allow_contributor": "true"},
	# Known team with no approved targets at all.
	"delta": {"allow_contributor": false},
}

share_create_ops := ["CreateTemplateShare", "CreateWorkloadShare", "CreateLensShare", "CreateProfileShare"]

share_delete_ops := ["DeleteTemplateShare", "DeleteWorkloadShare", "DeleteLensShare", "DeleteProfileShare"]

# alpha's approved target for each target type.
alpha_targets := {"account": "111111111111", "organization": "o-alphaorg0001", "ou": "ou-aaaa-11111111"}

# A syntactically valid target of each type that nobody approved.
stranger_targets := {"account": "999999999999", "organization": "o-strangerorg1", "ou": "ou-abcd-99999999"}

resource_types := {
	"CreateTemplateShare": "review-template",
	"CreateWorkloadShare": "workload",
	"CreateLensShare": "lens",
	"CreateProfileShare": "profile",
}

caller(team) := {
	"access_key_id": "AKIDEXAMPLE",
	"principal": "alice@example.com",
	"team": team,
	"attributes": {"cost-center": "cc-1"},
}

base_input(op, team, access) := {
	"operation": op,
	"region": "us-east-1",
	"caller": caller(team),
	"resource": {"type": "", "arn": ""},
	"access": access,
	"request": {"method": "POST", "path": "/", "query": {}, "body": {}},
	"source_ip": "127.0.0.1",
	"time": "2026-11-26T10:00:00Z",
}

# A share-creating request. CreateWorkloadShare also needs a PermissionType;
# READONLY keeps these tests about the target only.
share_input(op, team, target_type, shared_with) := object.union(base_input(op, team, "write"), {
	"resource": {"type": resource_types[op], "arn": "arn:aws:wellarchitected:us-east-1:123456789012:x/0123456789abcdef"},
	"share": object.union({"shared_with": shared_with, "target_type": target_type}, permission_field(op)),
	"request": {"method": "POST", "path": "/", "query": {}, "body": {"SharedWith": shared_with}},
})

permission_field(op) := {"permission_type": "READONLY"} if op == "CreateWorkloadShare"

permission_field(op) := {} if op != "CreateWorkloadShare"

workload_share_input(op, team, permission) := object.union(base_input(op, team, "write"), {
	"resource": {"type": "workload", "arn": "arn:aws:wellarchitected:us-east-1:123456789012:workload/0123456789abcdef"},
	"share": {"shared_with": "ou-bbbb-22222222", "target_type": "ou", "permission_type": permission},
	"request": {"method": "PATCH", "path": "/", "query": {}, "body": {"PermissionType": permission}},
})

update_share_input(team, permission) := object.union(base_input("UpdateWorkloadShare", team, "write"), {
	"resource": {"type": "workload", "arn": "arn:aws:wellarchitected:us-east-1:123456789012:workload/0123456789abcdef"},
	"share": {"permission_type": permission},
	"request": {"method": "PATCH", "path": "/", "query": {}, "body": {"PermissionType": permission}},
})

# The decision for an input, against the fixture teams.
decide(inp) := d if {
	d := authz.decision with input as inp with data.waguard.teams as fixture_teams
}

# A well-formed decision: allow is a boolean and there is at least one
# non-empty reason string.
well_formed(d) if {
	is_boolean(d.allow)
	is_array(d.reasons)
	count(d.reasons) > 0
	every r in d.reasons {
		is_string(r)
		r != ""
	}
}

allowed(d) if {
	well_formed(d)
	d.allow == true
}

denied(d) if {
	well_formed(d)
	d.allow == false
}

denied_because(d, fragment) if {
	denied(d)
	some r in d.reasons
	contains(r, fragment)
}

# ---------------------------------------------------------------------------
# Read operations
# ---------------------------------------------------------------------------

test_read_operation_allowed if {
	d := decide(base_input("GetWorkload", "alpha", "read"))
	allowed(d)
	d.reasons == ["GetWorkload is a read-only operation"]
}

test_list_and_export_operations_allowed if {
	every op in ["ListWorkloads", "ListTemplateShares", "ExportLens", "GetReviewTemplate", "ListShareInvitations"] {
		allowed(decide(base_input(op, "delta", "read")))
	}
}

# ---------------------------------------------------------------------------
# Unknown or missing team
# ---------------------------------------------------------------------------

test_unknown_team_denied_for_write if {
	d := decide(share_input("CreateTemplateShare", "nobody", "ou", "ou-aaaa-11111111"))
	denied_because(d, "team \"nobody\"")
	denied_because(d, "has no entry in waguard's team data")
}

test_unknown_team_denied_for_read if {
	denied_because(decide(base_input("GetWorkload", "nobody", "read")), "has no entry in waguard's team data")
}

test_unknown_team_denied_for_share_deletion if {
	denied_because(decide(base_input("DeleteWorkloadShare", "nobody", "write")), "has no entry in waguard's team data")
}

test_unknown_team_denied_for_update_workload_share if {
	denied_because(decide(update_share_input("nobody", "READONLY")), "has no entry in waguard's team data")
}

# An unknown team gets the one reason that matters, not per-operation noise.
test_unknown_team_gets_single_reason if {
	d := decide(share_input("CreateLensShare", "nobody", "unknown", "arn:aws:iam::111111111111:role/x"))
	count(d.reasons) == 1
}

test_missing_team_denied if {
	inp := json.remove(base_input("GetWorkload", "alpha", "read"), ["caller/team"])
	denied_because(decide(inp), "is not mapped to any team")
}

test_empty_team_denied if {
	denied_because(decide(base_input("GetWorkload", "", "read")), "is not mapped to any team")
}

test_team_data_missing_denied if {
	d := authz.decision with input as base_input("GetWorkload", "alpha", "read") with data.waguard.teams as {}
	denied_because(d, "has no entry in waguard's team data")
}

# ---------------------------------------------------------------------------
# Share creation: one allowed and one denied case per governed operation
# ---------------------------------------------------------------------------

test_create_template_share_allowed if {
	d := decide(share_input("CreateTemplateShare", "alpha", "ou", "ou-aaaa-11111111"))
	allowed(d)
	d.reasons == ["ou \"ou-aaaa-11111111\" is approved for team \"alpha\""]
}

test_create_template_share_denied if {
	d := decide(share_input("CreateTemplateShare", "alpha", "ou", "ou-abcd-99999999"))
	denied(d)
	d.reasons == ["team \"alpha\" may not share review-template with ou \"ou-abcd-99999999\": not in the team's approved OUs"]
}

test_create_workload_share_allowed if {
	allowed(decide(share_input("CreateWorkloadShare", "alpha", "account", "111111111111")))
}

test_create_workload_share_denied if {
	d := decide(share_input("CreateWorkloadShare", "alpha", "account", "999999999999"))
	d.reasons == ["team \"alpha\" may not share workload with account \"999999999999\": not in the team's approved accounts"]
	denied(d)
}

test_create_lens_share_allowed if {
	allowed(decide(share_input("CreateLensShare", "alpha", "organization", "o-alphaorg0001")))
}

test_create_lens_share_denied if {
	d := decide(share_input("CreateLensShare", "alpha", "organization", "o-strangerorg1"))
	denied(d)
	d.reasons == ["team \"alpha\" may not share lens with organization \"o-strangerorg1\": not in the team's approved organizations"]
}

test_create_profile_share_allowed if {
	allowed(decide(share_input("CreateProfileShare", "alpha", "ou", "ou-aaaa-11111111")))
}

test_create_profile_share_denied if {
	denied_because(decide(share_input("CreateProfileShare", "alpha", "account", "999999999999")), "may not share profile")
}

# ---------------------------------------------------------------------------
# Share creation: every operation x every target type
# ---------------------------------------------------------------------------

test_approved_account_allowed_for_every_share_operation if {
	every op in share_create_ops {
		allowed(decide(share_input(op, "alpha", "account", alpha_targets.account)))
	}
}

test_approved_organization_allowed_for_every_share_operation if {
	every op in share_create_ops {
		allowed(decide(share_input(op, "alpha", "organization", alpha_targets.organization)))
	}
}

test_approved_ou_allowed_for_every_share_operation if {
	every op in share_create_ops {
		allowed(decide(share_input(op, "alpha", "ou", alpha_targets.ou)))
	}
}

test_unapproved_target_denied_for_every_share_operation_and_target_type if {
	every op in share_create_ops {
		every target_type, target in stranger_targets {
			denied_because(decide(share_input(op, "alpha", target_type, target)), "not in the team's approved")
		}
	}
}

# Lists are per target type: an approved account ID claimed as an OU is not
# approved.
test_target_checked_against_list_of_its_own_type if {
	denied(decide(share_input("CreateTemplateShare", "alpha", "ou", "111111111111")))
	denied(decide(share_input("CreateTemplateShare", "alpha", "organization", "ou-aaaa-11111111")))
}

test_other_teams_target_denied if {
	denied(decide(share_input("CreateTemplateShare", "alpha", "ou", "ou-bbbb-22222222")))
}

test_team_without_lists_denied if {
	every target_type, target in alpha_targets {
		denied_because(decide(share_input("CreateTemplateShare", "delta", target_type, target)), "not in the team's approved")
	}
}

test_unknown_target_type_denied_for_every_share_operation if {
	every op in share_create_ops {
		d := decide(share_input(op, "alpha", "unknown", "arn:aws:iam::111111111111:role/reviewer"))
		denied_because(d, "target type \"unknown\" cannot be approved")
	}
}

# Even a value that is on an approved list is refused if its type is unknown.
test_unknown_target_type_denied_even_if_value_is_listed if {
	denied_because(decide(share_input("CreateTemplateShare", "alpha", "unknown", "ou-aaaa-11111111")), "cannot be approved")
}

test_missing_target_type_denied if {
	inp := json.remove(share_input("CreateTemplateShare", "alpha", "ou", "ou-aaaa-11111111"), ["share/target_type"])
	denied_because(decide(inp), "target type \"\" cannot be approved")
}

test_missing_shared_with_denied if {
	inp := json.remove(share_input("CreateTemplateShare", "alpha", "ou", "ou-aaaa-11111111"), ["share/shared_with"])
	denied_because(decide(inp), "names no SharedWith target")
}

test_missing_share_object_denied if {
	inp := json.remove(share_input("CreateProfileShare", "alpha", "ou", "ou-aaaa-11111111"), ["share"])
	denied(decide(inp))
}

# ---------------------------------------------------------------------------
# Per-resource-type overrides
# ---------------------------------------------------------------------------

test_resource_override_allows_its_own_list if {
	d := decide(share_input("CreateLensShare", "beta", "ou", "ou-bbbb-lens0001"))
	allowed(d)
	d.reasons == ["ou \"ou-bbbb-lens0001\" is approved for team \"beta\" for lens shares"]
}

test_resource_override_replaces_top_level_list if {
	d := decide(share_input("CreateLensShare", "beta", "ou", "ou-bbbb-22222222"))
	d.reasons == ["team \"beta\" may not share lens with ou \"ou-bbbb-22222222\": not in the team's approved OUs for lens shares"]
	denied(d)
}

test_resource_override_only_applies_to_its_resource_type if {
	denied(decide(share_input("CreateTemplateShare", "beta", "ou", "ou-bbbb-lens0001")))
	allowed(decide(share_input("CreateTemplateShare", "beta", "ou", "ou-bbbb-22222222")))
}

test_resource_override_leaves_other_lists_alone if {
	allowed(decide(share_input("CreateLensShare", "beta", "account", "222222222222")))
}

# ---------------------------------------------------------------------------
# UpdateWorkloadShare: READONLY always, CONTRIBUTOR only with allow_contributor
# ---------------------------------------------------------------------------

test_update_workload_share_readonly_allowed_without_allow_contributor if {
	d := decide(update_share_input("alpha", "READONLY"))
	allowed(d)
	d.reasons == ["team \"alpha\" may grant READONLY on workload shares"]
}

test_update_workload_share_readonly_allowed_with_allow_contributor if {
	allowed(decide(update_share_input("beta", "READONLY")))
}

test_update_workload_share_contributor_allowed_with_allow_contributor if {
	d := decide(update_share_input("beta", "CONTRIBUTOR"))
	allowed(d)
	d.reasons == ["team \"beta\" may grant CONTRIBUTOR on workload shares"]
}

test_update_workload_share_contributor_denied_without_allow_contributor if {
	d := decide(update_share_input("alpha", "CONTRIBUTOR"))
	denied(d)
	d.reasons == ["team \"alpha\" may not grant CONTRIBUTOR on a workload share (UpdateWorkloadShare): the team's data does not set allow_contributor to true"]
}

test_update_workload_share_contributor_denied_when_allow_contributor_false if {
	denied_because(decide(update_share_input("delta", "CONTRIBUTOR")), "does not set allow_contributor to true")
}

test_update_workload_share_contributor_denied_when_allow_contributor_not_boolean if {
	denied_because(decide(update_share_input("gamma", "CONTRIBUTOR")), "does not set allow_contributor to true")
}

test_update_workload_share_unknown_permission_denied if {
	every permission in ["OWNER", "readonly", ""] {
		denied(decide(update_share_input("beta", permission)))
	}
	denied_because(decide(update_share_input("beta", "OWNER")), "PermissionType \"OWNER\"")
}

test_update_workload_share_missing_permission_denied if {
	inp := json.remove(update_share_input("beta", "READONLY"), ["share", "request/body/PermissionType"])
	denied_because(decide(inp), "without a PermissionType")
}

# If the gateway sent no share.permission_type, the request body decides.
test_update_workload_share_permission_from_request_body if {
	allowed(decide(json.remove(update_share_input("beta", "CONTRIBUTOR"), ["share"])))
	denied(decide(json.remove(update_share_input("alpha", "CONTRIBUTOR"), ["share"])))
}

# ---------------------------------------------------------------------------
# CreateWorkloadShare also grants a PermissionType
# ---------------------------------------------------------------------------

test_create_workload_share_contributor_allowed_with_allow_contributor if {
	d := decide(workload_share_input("CreateWorkloadShare", "beta", "CONTRIBUTOR"))
	allowed(d)
	count(d.reasons) == 2
}

# Deny overrides allow: the target is approved, the permission is not, and
# only the deny reason is reported.
test_create_workload_share_contributor_denied_without_allow_contributor if {
	inp := object.union(workload_share_input("CreateWorkloadShare", "alpha", "CONTRIBUTOR"), {"share": {"shared_with": "ou-aaaa-11111111"}})
	d := decide(inp)
	denied(d)
	d.reasons == ["team \"alpha\" may not grant CONTRIBUTOR on a workload share (CreateWorkloadShare): the team's data does not set allow_contributor to true"]
}

test_create_workload_share_missing_permission_denied if {
	inp := json.remove(workload_share_input("CreateWorkloadShare", "beta", "READONLY"), ["share/permission_type", "request/body/PermissionType"])
	denied_because(decide(inp), "without a PermissionType")
}

# ---------------------------------------------------------------------------
# Share removal
# ---------------------------------------------------------------------------

test_share_deletion_allowed if {
	every op in share_delete_ops {
		d := decide(base_input(op, "delta", "write"))
		allowed(d)
		d.reasons == [sprintf("%s only removes a share, which narrows access", [op])]
	}
}

# ---------------------------------------------------------------------------
# Everything else
# ---------------------------------------------------------------------------

test_other_write_operation_denied if {
	every op in ["CreateWorkload", "DeleteWorkload", "TagResource", "UpdateShareInvitation", "UpdateGlobalSettings", "AssociateLenses"] {
		d := decide(base_input(op, "beta", "write"))
		denied(d)
		d.reasons == [sprintf("operation %q is not permitted through waguard: waguard allows only read operations and governed share changes", [op])]
	}
}

test_missing_access_treated_as_write if {
	denied_because(decide(json.remove(base_input("TagResource", "beta", "read"), ["access"])), "is not permitted through waguard")
	denied(decide(base_input("TagResource", "beta", "READ")))
}

# A share-creating or share-updating operation labelled "read" is still checked.
test_governed_operation_labelled_read_still_checked if {
	inp := object.union(share_input("CreateTemplateShare", "alpha", "ou", "ou-abcd-99999999"), {"access": "read"})
	denied_because(decide(inp), "not in the team's approved OUs")
	denied(decide(object.union(update_share_input("alpha", "CONTRIBUTOR"), {"access": "read"})))

	# and when allowed, it is allowed for its approved target, not as a read
	ok := decide(object.union(share_input("CreateTemplateShare", "alpha", "ou", "ou-aaaa-11111111"), {"access": "read"}))
	ok.reasons == ["ou \"ou-aaaa-11111111\" is approved for team \"alpha\""]
	ok_update := decide(object.union(update_share_input("alpha", "READONLY"), {"access": "read"}))
	ok_update.reasons == ["team \"alpha\" may grant READONLY on workload shares"]
}

test_missing_operation_denied if {
	denied(decide(json.remove(base_input("TagResource", "beta", "write"), ["operation"])))
}

test_empty_input_denied if {
	d := authz.decision with input as {} with data.waguard.teams as fixture_teams
	denied(d)
}

# ---------------------------------------------------------------------------
# Every deny and every allow carries a reason
# ---------------------------------------------------------------------------

deny_cases := [
	base_input("GetWorkload", "nobody", "read"),
	base_input("GetWorkload", "", "read"),
	base_input("TagResource", "alpha", "write"),
	share_input("CreateTemplateShare", "alpha", "ou", "ou-abcd-99999999"),
	share_input("CreateWorkloadShare", "alpha", "account", "999999999999"),
	share_input("CreateLensShare", "alpha", "unknown", "arn:aws:iam::111111111111:user/x"),
	share_input("CreateProfileShare", "delta", "organization", "o-alphaorg0001"),
	json.remove(share_input("CreateTemplateShare", "alpha", "ou", ""), ["share/shared_with"]),
	update_share_input("alpha", "CONTRIBUTOR"),
	update_share_input("beta", "OWNER"),
	json.remove(update_share_input("beta", "READONLY"), ["share", "request/body/PermissionType"]),
	{},
]

allow_cases := [
	base_input("ListWorkloads", "alpha", "read"),
	base_input("DeleteTemplateShare", "alpha", "write"),
	share_input("CreateTemplateShare", "alpha", "ou", "ou-aaaa-11111111"),
	share_input("CreateWorkloadShare", "beta", "account", "222222222222"),
	update_share_input("alpha", "READONLY"),
	update_share_input("beta", "CONTRIBUTOR"),
]

test_every_deny_has_reason if {
	every inp in deny_cases {
		denied(decide(inp))
	}
}

test_every_allow_has_reason if {
	every inp in allow_cases {
		allowed(decide(inp))
	}
}

# ---------------------------------------------------------------------------
# The shipped example data (teams.json), on purpose
# ---------------------------------------------------------------------------

test_example_data_payments_share_with_approved_ou_allowed if {
	d := authz.decision with input as share_input("CreateTemplateShare", "payments", "ou", "ou-ab12-11111111")
	allowed(d)
}

test_example_data_payments_share_with_other_ou_denied if {
	d := authz.decision with input as share_input("CreateTemplateShare", "payments", "ou", "ou-abcd-99999999")
	d.reasons == ["team \"payments\" may not share review-template with ou \"ou-abcd-99999999\": not in the team's approved OUs"]
	denied(d)
}

test_example_data_payments_contributor_denied if {
	d := authz.decision with input as update_share_input("payments", "CONTRIBUTOR")
	denied(d)
}

test_example_data_platform_contributor_allowed if {
	d := authz.decision with input as update_share_input("platform", "CONTRIBUTOR")
	allowed(d)
}

# platform's lens override: custom lenses (only) may go to the whole organization.
test_example_data_platform_lens_shared_with_organization_allowed if {
	d := authz.decision with input as share_input("CreateLensShare", "platform", "organization", "o-exampleorg01")
	allowed(d)
}

test_example_data_platform_template_shared_with_organization_denied if {
	d := authz.decision with input as share_input("CreateTemplateShare", "platform", "organization", "o-exampleorg01")
	denied(d)
}
