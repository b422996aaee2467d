# Tests for data.waguard.authz.decision and the team index it reads.
#
# Every test_* rule must evaluate to true. Most tests replace the team data
# with the fixture below (data.waguard.teams as fixture_teams; the index in
# index.rego follows it), so they do not depend on the example teams.json; the
# test_example_data_* tests check the shipped teams.json on purpose.
package waguard.authz_test

import rego.v1

import data.waguard.authz
import data.waguard.index

# ---------------------------------------------------------------------------
# Fixtures: teams
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
	# Teams of the example organization below.
	"payments": {
		"accounts": ["111122223333", "555566667777"],
		"ous": ["ou-ab12-11111111"],
		"principals": ["arn:aws:iam::333748161105:role/reviewer", "arn:aws:iam::555566667777:role/reviewer"],
		"resource_overrides": {"lens": {"ous": ["ou-ab12-22222222"]}},
	},
	"platform": {"ous": ["ou-ab12-33333333"]},
	"everyone": {"organizations": ["o-exampleorg01"]},
	# Approves only by list: nothing its place in the organization could change.
	"auditors": {"accounts": ["111122223333"]},
}

# ---------------------------------------------------------------------------
# Fixtures: the example organization, as the gateway describes its members
#
#   Root (r-ab12)
#     payments (ou-ab12-11111111)        pay-dev-1 100000000001, pay-retired 555566667777 (suspended)
#       payments-prod (ou-ab12-22222222) pay-prod-1 333748161105
#         payments-prod-eu (ou-ab12-44444444) pay-prod-eu-1 222233334444
#     platform (ou-ab12-33333333)
#     sandbox (ou-ab12-99999999)         sandbox-1 888899990000
# ---------------------------------------------------------------------------

organization := {"id": "o-exampleorg01", "root": "r-ab12", "snapshot_age_seconds": 42}

ou_names := {
	"r-ab12": "Root",
	"ou-ab12-11111111": "payments",
	"ou-ab12-22222222": "payments-prod",
	"ou-ab12-44444444": "payments-prod-eu",
	"ou-ab12-33333333": "platform",
	"ou-ab12-99999999": "sandbox",
}

ou_paths := {
	"ou-ab12-11111111": ["r-ab12", "ou-ab12-11111111"],
	"ou-ab12-22222222": ["r-ab12", "ou-ab12-11111111", "ou-ab12-22222222"],
	"ou-ab12-44444444": ["r-ab12", "ou-ab12-11111111", "ou-ab12-22222222", "ou-ab12-44444444"],
	"ou-ab12-33333333": ["r-ab12", "ou-ab12-33333333"],
	"ou-ab12-99999999": ["r-ab12", "ou-ab12-99999999"],
}

# Account: [name, parent OU, status].
accounts := {
	"100000000001": ["pay-dev-1", "ou-ab12-11111111", "ACTIVE"],
	"555566667777": ["pay-retired", "ou-ab12-11111111", "SUSPENDED"],
	"333748161105": ["pay-prod-1", "ou-ab12-22222222", "ACTIVE"],
	"222233334444": ["pay-prod-eu-1", "ou-ab12-44444444", "ACTIVE"],
	"888899990000": ["sandbox-1", "ou-ab12-99999999", "ACTIVE"],
}

# input.share.target for an account of the organization.
member_account(id) := {
	"id": id,
	"type": "account",
	"account": id,
	"in_organization": true,
	"ou_path": ou_paths[parent],
	"ou_path_names": [ou_names[ou] | some ou in ou_paths[parent]],
	"name": name,
	"status": status,
} if [name, parent, status] := accounts[id]

# input.share.target for an OU of the organization: its path ends with itself.
member_ou(id) := {
	"id": id,
	"type": "ou",
	"account": null,
	"in_organization": true,
	"ou_path": ou_paths[id],
	"ou_path_names": [ou_names[ou] | some ou in ou_paths[id]],
	"name": ou_names[id],
	"status": null,
}

# input.share.target for an IAM principal of a member account.
member_principal(arn, account) := object.union(member_account(account), {"id": arn, "type": "iam_principal"})

# input.share.target for a target the organization does not contain.
outsider(id, type) := object.union(unplaced(id, type), {"in_organization": false})

# input.share.target as the gateway sends it when it did not place the target:
# no [organizations] configured, or the lookup failed.
unplaced(id, type) := {
	"id": id,
	"type": type,
	"account": account_of(id, type),
	"in_organization": null,
	"ou_path": [],
	"ou_path_names": [],
	"name": null,
	"status": null,
}

account_of(id, "account") := id

account_of(id, type) := null if type != "account"

# ---------------------------------------------------------------------------
# Fixtures: inputs
# ---------------------------------------------------------------------------

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

# A share-creating request as the gateway sends it without [organizations]:
# the target is not placed. CreateWorkloadShare also needs a PermissionType;
# READONLY keeps these tests about the target only.
share_input(op, team, target_type, shared_with) := placed_share_input(op, team, shared_with, unplaced(shared_with, target_type))

# A share-creating request with the target as the gateway described it.
placed_share_input(op, team, shared_with, target) := object.union(base_input(op, team, "write"), {
	"resource": {"type": resource_types[op], "arn": "arn:aws:wellarchitected:us-east-1:123456789012:x/0123456789abcdef"},
	"share": object.union({"shared_with": shared_with, "target_type": target.type, "target": target}, permission_field(op)),
	"request": {"method": "POST", "path": "/", "query": {}, "body": {"SharedWith": shared_with}},
})

# The same request from a gateway that knows the organization.
org_share_input(op, team, shared_with, target) := object.union(
	placed_share_input(op, team, shared_with, target),
	{"organization": organization},
)

permission_field(op) := {"permission_type": "READONLY"} if op == "CreateWorkloadShare"

permission_field(op) := {} if op != "CreateWorkloadShare"

workload_share_input(op, team, permission) := object.union(base_input(op, team, "write"), {
	"resource": {"type": "workload", "arn": "arn:aws:wellarchitected:us-east-1:123456789012:workload/0123456789abcdef"},
	"share": {
		"shared_with": "ou-bbbb-22222222",
		"target_type": "ou",
		"target": unplaced("ou-bbbb-22222222", "ou"),
		"permission_type": permission,
	},
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
# Unknown or missing team (team, caller_refusal)
# ---------------------------------------------------------------------------

test_unknown_team_denied_for_write if {
	d := decide(share_input("CreateTemplateShare", "nobody", "ou", "ou-aaaa-11111111"))
	d.reasons == ["team \"nobody\" (caller \"alice@example.com\") has no entry in waguard's team data, so it may not call CreateTemplateShare"]
	denied(d)
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
	d := decide(share_input("CreateLensShare", "nobody", "unknown", "arn:aws:iam::111111111111:group/x"))
	count(d.reasons) == 1
}

test_team_entry_that_is_not_an_object_is_unknown if {
	d := authz.decision with input as base_input("GetWorkload", "odd", "read") with data.waguard.teams as {"odd": ["111111111111"]}
	denied_because(d, "has no entry in waguard's team data")
}

test_missing_team_denied if {
	inp := json.remove(base_input("GetWorkload", "alpha", "read"), ["caller/team"])
	d := decide(inp)
	d.reasons == ["caller \"alice@example.com\" is not mapped to any team, so waguard cannot authorize operation \"GetWorkload\""]
	denied(d)
}

test_empty_team_denied if {
	denied_because(decide(base_input("GetWorkload", "", "read")), "is not mapped to any team")
}

# A team named "" in the data does not make an unmapped caller known.
test_empty_team_denied_even_if_the_data_names_it if {
	d := authz.decision with input as base_input("GetWorkload", "", "read") with data.waguard.teams as {"": {}}
	denied_because(d, "is not mapped to any team")
}

test_non_string_team_denied if {
	denied_because(decide(object.union(base_input("GetWorkload", "alpha", "read"), {"caller": {"team": 7}})), "is not mapped to any team")
}

test_team_data_missing_denied if {
	d := authz.decision with input as base_input("GetWorkload", "alpha", "read") with data.waguard.teams as {}
	denied_because(d, "has no entry in waguard's team data")
}

# ---------------------------------------------------------------------------
# Share creation by list: one allowed and one denied case per operation
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
# Share creation by list: every operation x every target type
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
		d := decide(share_input(op, "alpha", "unknown", "arn:aws:iam::111111111111:group/reviewers"))
		d.reasons == [sprintf("team \"alpha\" may not share %s with \"arn:aws:iam::111111111111:group/reviewers\": target type \"unknown\" cannot be approved (only account IDs, organization IDs and OU IDs can)", [resource_types[op]])]
	}
}

test_target_type_that_names_no_list_denied if {
	every target_type in ["resource_type", "targets", "ids", "OU"] {
		denied_because(decide(share_input("CreateTemplateShare", "alpha", target_type, "ou-aaaa-11111111")), sprintf("target type %q cannot be approved", [target_type]))
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
	inp := json.remove(share_input("CreateTemplateShare", "alpha", "ou", "ou-aaaa-11111111"), ["share/shared_with", "share/target"])
	d := decide(inp)
	d.reasons == ["team \"alpha\" may not share review-template: the request names no SharedWith target"]
	denied(d)
}

# An empty id in the team data approves nothing.
test_empty_shared_with_denied_even_if_the_data_lists_it if {
	d := authz.decision with input as share_input("CreateTemplateShare", "alpha", "ou", "") with data.waguard.teams as {"alpha": {"ous": [""]}}
	denied_because(d, "names no SharedWith target")
}

test_missing_share_object_denied if {
	inp := json.remove(share_input("CreateProfileShare", "alpha", "ou", "ou-aaaa-11111111"), ["share"])
	denied(decide(inp))
}

# Only the gateway's description of the target approves it.
test_share_without_target_description_denied if {
	inp := json.remove(share_input("CreateTemplateShare", "alpha", "ou", "ou-aaaa-11111111"), ["share/target"])
	d := decide(inp)
	d.reasons == ["team \"alpha\" may not share review-template with \"ou-aaaa-11111111\": the input does not describe the target (input.share.target)"]
	denied(d)
}

# ---------------------------------------------------------------------------
# Per-resource-type overrides (index.rego)
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
# The team index (index.rego)
# ---------------------------------------------------------------------------

index_of(teams) := t if {
	t := index.teams with data.waguard.teams as teams
}

test_index_has_every_share_operation_and_target_type if {
	shares := index_of(fixture_teams).delta.shares
	object.keys(shares) == {"CreateTemplateShare", "CreateWorkloadShare", "CreateLensShare", "CreateProfileShare"}
	shares.CreateLensShare.resource_type == "lens"
	every _, approved in shares {
		object.keys(approved.targets) == {"account", "organization", "ou", "iam_principal"}
		every _, targets in approved.targets {
			targets.ids == set()
		}
	}
}

test_index_applies_overrides_with_their_scope if {
	shares := index_of(fixture_teams).beta.shares
	shares.CreateLensShare.targets.ou == {"ids": {"ou-bbbb-lens0001"}, "label": "OUs", "scope": " for lens shares"}
	shares.CreateLensShare.targets.account == {"ids": {"222222222222"}, "label": "accounts", "scope": ""}
	shares.CreateTemplateShare.targets.ou.ids == {"ou-bbbb-22222222"}
}

# An override of false replaces the list with nothing, and names no scope.
test_index_override_of_false_approves_nothing if {
	shares := index_of({"t": {"ous": ["ou-aaaa-11111111"], "resource_overrides": {"lens": {"ous": false}}}}).t.shares
	shares.CreateLensShare.targets.ou == {"ids": set(), "label": "OUs", "scope": ""}
}

test_index_drops_empty_ids_and_lists_that_are_not_lists if {
	t := index_of({"t": {"accounts": "111111111111", "ous": ["", "ou-aaaa-11111111"]}}).t
	t.shares.CreateTemplateShare.targets.account.ids == set()
	t.shares.CreateTemplateShare.targets.ou.ids == {"ou-aaaa-11111111"}
}

test_index_allow_contributor_only_when_literally_true if {
	teams := index_of(fixture_teams)
	teams.beta.allow_contributor == true
	teams.gamma.allow_contributor == false
	teams.alpha.allow_contributor == false
}

test_index_skips_unnamed_and_non_object_teams if {
	teams := index_of({"": {}, "list": [], "ok": {}})
	object.keys(teams) == {"ok"}
}

# ---------------------------------------------------------------------------
# The organization: OUs approve everything below them
# ---------------------------------------------------------------------------

test_account_in_approved_ou_allowed if {
	d := decide(org_share_input("CreateTemplateShare", "payments", "100000000001", member_account("100000000001")))
	allowed(d)
	d.reasons == ["account 100000000001 (pay-dev-1) is under Root/payments, which is under an OU approved for team \"payments\""]
}

test_account_in_nested_ou_allowed if {
	d := decide(org_share_input("CreateTemplateShare", "payments", "222233334444", member_account("222233334444")))
	allowed(d)
	d.reasons == ["account 222233334444 (pay-prod-eu-1) is under Root/payments/payments-prod/payments-prod-eu, which is under an OU approved for team \"payments\""]
}

test_account_in_unapproved_ou_denied_naming_its_path if {
	d := decide(org_share_input("CreateTemplateShare", "platform", "333748161105", member_account("333748161105")))
	d.reasons == ["team \"platform\" may not share review-template: account 333748161105 (pay-prod-1) is under Root/payments/payments-prod, which is not under an OU approved for team \"platform\""]
	denied(d)
}

test_account_in_sibling_ou_denied if {
	denied_because(
		decide(org_share_input("CreateLensShare", "payments", "888899990000", member_account("888899990000"))),
		"account 888899990000 (sandbox-1) is under Root/sandbox, which is not under an OU approved for team \"payments\" for lens shares",
	)
}

test_child_ou_of_approved_ou_allowed if {
	d := decide(org_share_input("CreateProfileShare", "payments", "ou-ab12-22222222", member_ou("ou-ab12-22222222")))
	allowed(d)
	d.reasons == ["ou ou-ab12-22222222 (payments-prod) is under Root/payments/payments-prod, which is under an OU approved for team \"payments\""]
}

test_approved_ou_itself_allowed_by_its_list if {
	d := decide(org_share_input("CreateProfileShare", "payments", "ou-ab12-11111111", member_ou("ou-ab12-11111111")))
	d.reasons == ["ou \"ou-ab12-11111111\" is approved for team \"payments\""]
}

test_parent_of_approved_ou_denied if {
	d := decide(org_share_input("CreateLensShare", "payments", "ou-ab12-11111111", member_ou("ou-ab12-11111111")))
	denied_because(d, "ou ou-ab12-11111111 (payments) is under Root/payments, which is not under an OU approved for team \"payments\" for lens shares")
}

# An override list approves below itself too.
test_resource_override_ou_approves_below_it if {
	d := decide(org_share_input("CreateLensShare", "payments", "222233334444", member_account("222233334444")))
	allowed(d)
	d.reasons == ["account 222233334444 (pay-prod-eu-1) is under Root/payments/payments-prod/payments-prod-eu, which is under an OU approved for team \"payments\" for lens shares"]
}

test_ou_arn_form_allowed if {
	arn := "arn:aws:organizations::111111111111:ou/o-exampleorg01/ou-ab12-22222222"
	inp := org_share_input("CreateTemplateShare", "payments", arn, member_ou("ou-ab12-22222222"))
	allowed(decide(inp))
	denied_because(
		decide(org_share_input("CreateTemplateShare", "platform", arn, member_ou("ou-ab12-22222222"))),
		"ou ou-ab12-22222222 (payments-prod) is under Root/payments/payments-prod",
	)
}

# Only accounts and OUs are approved by where they sit.
test_ou_path_does_not_approve_an_organization_target if {
	target := object.union(unplaced("o-exampleorg01", "organization"), {"in_organization": true, "ou_path": ["r-ab12", "ou-ab12-11111111"]})
	denied_because(
		decide(org_share_input("CreateTemplateShare", "payments", "o-exampleorg01", target)),
		"not in the team's approved organizations",
	)
}

# ---------------------------------------------------------------------------
# The organization: the whole organization
# ---------------------------------------------------------------------------

test_organization_approves_its_accounts if {
	d := decide(org_share_input("CreateTemplateShare", "everyone", "888899990000", member_account("888899990000")))
	allowed(d)
	d.reasons == ["account 888899990000 (sandbox-1) is in organization o-exampleorg01, which is approved for team \"everyone\""]
}

test_organization_approves_its_ous if {
	allowed(decide(org_share_input("CreateTemplateShare", "everyone", "ou-ab12-99999999", member_ou("ou-ab12-99999999"))))
}

test_organization_arn_form_allowed if {
	arn := "arn:aws:organizations::111111111111:organization/o-exampleorg01"
	target := object.union(unplaced("o-exampleorg01", "organization"), {"in_organization": true})
	d := decide(org_share_input("CreateLensShare", "everyone", arn, target))
	d.reasons == ["organization \"o-exampleorg01\" is approved for team \"everyone\""]
	denied_because(
		decide(org_share_input("CreateLensShare", "payments", arn, target)),
		"team \"payments\" may not share lens with organization \"o-exampleorg01\": not in the team's approved organizations",
	)
}

test_other_organization_does_not_approve if {
	other := object.union(organization, {"id": "o-otherorg0001"})
	inp := object.union(org_share_input("CreateTemplateShare", "everyone", "888899990000", member_account("888899990000")), {"organization": other})
	denied_because(decide(inp), "which is not under an OU approved for team \"everyone\"")
}

# ---------------------------------------------------------------------------
# The organization: outside it, suspended, and when the lookup failed
# ---------------------------------------------------------------------------

test_account_outside_organization_allowed_when_listed if {
	d := decide(org_share_input("CreateTemplateShare", "payments", "111122223333", outsider("111122223333", "account")))
	allowed(d)
	d.reasons == ["account \"111122223333\" is approved for team \"payments\""]
}

test_account_outside_organization_denied_when_not_listed if {
	d := decide(org_share_input("CreateTemplateShare", "payments", "999999999999", outsider("999999999999", "account")))
	d.reasons == ["team \"payments\" may not share review-template with account 999999999999: it is outside the organization and not in the team's approved accounts"]
	denied(d)
}

test_ou_of_another_organization_denied if {
	denied_because(
		decide(org_share_input("CreateTemplateShare", "payments", "ou-zz99-22222222", outsider("ou-zz99-22222222", "ou"))),
		"ou ou-zz99-22222222: it is outside the organization and not in the team's approved OUs",
	)
}

test_suspended_account_denied_even_when_listed if {
	d := decide(org_share_input("CreateTemplateShare", "payments", "555566667777", member_account("555566667777")))
	d.reasons == ["team \"payments\" may not share review-template with account 555566667777: account 555566667777 is suspended, and a suspended account is never approved"]
	denied(d)
}

test_lookup_failed_denied_when_only_its_place_could_approve if {
	d := decide(org_share_input("CreateTemplateShare", "payments", "333748161105", unplaced("333748161105", "account")))
	d.reasons == ["team \"payments\" may not share review-template with account 333748161105: the organization lookup for it failed, so waguard cannot tell whether it is in an OU or organization approved for the team"]
	denied(d)
}

test_lookup_failed_still_allows_a_listed_account if {
	d := decide(org_share_input("CreateTemplateShare", "payments", "111122223333", unplaced("111122223333", "account")))
	allowed(d)
	d.reasons == ["account \"111122223333\" is approved for team \"payments\""]
}

test_lookup_failed_without_ou_or_organization_lists_gives_the_list_reason if {
	d := decide(org_share_input("CreateTemplateShare", "auditors", "333748161105", unplaced("333748161105", "account")))
	d.reasons == ["team \"auditors\" may not share review-template with account \"333748161105\": not in the team's approved accounts"]
}

# No snapshot read yet: the gateway knows there is an organization, not which.
test_no_snapshot_yet_is_a_failed_lookup if {
	inp := object.union(
		org_share_input("CreateTemplateShare", "everyone", "333748161105", unplaced("333748161105", "account")),
		{"organization": {"id": null, "root": null, "snapshot_age_seconds": null}},
	)
	denied_because(decide(inp), "the organization lookup for it failed")
}

# Without [organizations] nothing is placed: only the lists decide, with
# today's reasons.
test_no_organization_configured_decides_by_lists if {
	d := decide(share_input("CreateTemplateShare", "payments", "account", "333748161105"))
	d.reasons == ["team \"payments\" may not share review-template with account \"333748161105\": not in the team's approved accounts"]
	allowed(decide(share_input("CreateTemplateShare", "payments", "account", "111122223333")))
}

# ---------------------------------------------------------------------------
# IAM principals: by name only
# ---------------------------------------------------------------------------

test_iam_principal_allowed_when_listed if {
	arn := "arn:aws:iam::333748161105:role/reviewer"
	d := decide(org_share_input("CreateWorkloadShare", "payments", arn, member_principal(arn, "333748161105")))
	allowed(d)
	d.reasons == [
		"iam_principal \"arn:aws:iam::333748161105:role/reviewer\" is approved for team \"payments\"",
		"team \"payments\" may grant READONLY on workload shares",
	]
}

test_iam_principal_denied_when_not_listed if {
	arn := "arn:aws:iam::333748161105:user/alice"
	d := decide(org_share_input("CreateWorkloadShare", "payments", arn, member_principal(arn, "333748161105")))
	d.reasons == ["team \"payments\" may not share workload with iam_principal \"arn:aws:iam::333748161105:user/alice\": not in the team's approved principals"]
	denied(d)
}

# Neither its account's OU nor the organization approves an IAM principal.
test_iam_principal_not_approved_by_its_place if {
	arn := "arn:aws:iam::222233334444:role/deploy"
	denied_because(
		decide(org_share_input("CreateWorkloadShare", "everyone", arn, member_principal(arn, "222233334444"))),
		"not in the team's approved principals",
	)
}

test_iam_principal_of_suspended_account_denied if {
	arn := "arn:aws:iam::555566667777:role/reviewer"
	denied_because(
		decide(org_share_input("CreateWorkloadShare", "payments", arn, member_principal(arn, "555566667777"))),
		"account 555566667777 is suspended",
	)
}

# Without [organizations] the lists still decide.
test_iam_principal_listed_without_organization if {
	arn := "arn:aws:iam::333748161105:role/reviewer"
	allowed(decide(share_input("CreateTemplateShare", "payments", "iam_principal", arn)))
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
	d := decide(update_share_input("beta", "OWNER"))
	d.reasons == ["team \"beta\" may not grant PermissionType \"OWNER\" on a workload share: it is neither READONLY nor CONTRIBUTOR"]
}

test_update_workload_share_missing_permission_denied if {
	inp := json.remove(update_share_input("beta", "READONLY"), ["share", "request/body/PermissionType"])
	d := decide(inp)
	d.reasons == ["team \"beta\" may not call UpdateWorkloadShare without a PermissionType: waguard cannot tell what it would grant"]
}

# If the gateway sent no share.permission_type, the request body decides.
test_update_workload_share_permission_from_request_body if {
	allowed(decide(json.remove(update_share_input("beta", "CONTRIBUTOR"), ["share"])))
	denied(decide(json.remove(update_share_input("alpha", "CONTRIBUTOR"), ["share"])))
}

# ---------------------------------------------------------------------------
# CreateWorkloadShare also grants a PermissionType (deny overrides allow)
# ---------------------------------------------------------------------------

test_create_workload_share_contributor_allowed_with_allow_contributor if {
	d := decide(workload_share_input("CreateWorkloadShare", "beta", "CONTRIBUTOR"))
	allowed(d)
	d.reasons == [
		"ou \"ou-bbbb-22222222\" is approved for team \"beta\"",
		"team \"beta\" may grant CONTRIBUTOR on workload shares",
	]
}

# The target is approved, the permission is not: only the deny reason counts.
test_create_workload_share_contributor_denied_without_allow_contributor if {
	inp := object.union(
		workload_share_input("CreateWorkloadShare", "alpha", "CONTRIBUTOR"),
		{"share": {"shared_with": "ou-aaaa-11111111", "target": unplaced("ou-aaaa-11111111", "ou")}},
	)
	d := decide(inp)
	denied(d)
	d.reasons == ["team \"alpha\" may not grant CONTRIBUTOR on a workload share (CreateWorkloadShare): the team's data does not set allow_contributor to true"]
}

# Both denied: both reasons, sorted.
test_create_workload_share_reports_every_denial if {
	d := decide(workload_share_input("CreateWorkloadShare", "alpha", "CONTRIBUTOR"))
	d.reasons == [
		"team \"alpha\" may not grant CONTRIBUTOR on a workload share (CreateWorkloadShare): the team's data does not set allow_contributor to true",
		"team \"alpha\" may not share workload with ou \"ou-bbbb-22222222\": not in the team's approved OUs",
	]
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

test_share_deletion_labelled_read_gets_both_reasons if {
	d := decide(base_input("DeleteLensShare", "delta", "read"))
	d.reasons == ["DeleteLensShare is a read-only operation", "DeleteLensShare only removes a share, which narrows access"]
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

# Scan results (input.scan, a later feature) do not change any decision.
test_scan_results_do_not_change_the_decision if {
	scan := {"scan": {"share_id": "0123456789abcdef", "status": "PENDING"}}
	every inp in array.concat(deny_cases, allow_cases) {
		decide(object.union(inp, scan)) == decide(inp)
	}
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
	share_input("CreateLensShare", "alpha", "unknown", "arn:aws:iam::111111111111:group/x"),
	share_input("CreateProfileShare", "delta", "organization", "o-alphaorg0001"),
	json.remove(share_input("CreateTemplateShare", "alpha", "ou", ""), ["share/shared_with"]),
	org_share_input("CreateTemplateShare", "platform", "333748161105", member_account("333748161105")),
	org_share_input("CreateTemplateShare", "payments", "555566667777", member_account("555566667777")),
	org_share_input("CreateTemplateShare", "payments", "999999999999", outsider("999999999999", "account")),
	org_share_input("CreateTemplateShare", "payments", "333748161105", unplaced("333748161105", "account")),
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
	org_share_input("CreateTemplateShare", "payments", "222233334444", member_account("222233334444")),
	org_share_input("CreateTemplateShare", "everyone", "888899990000", member_account("888899990000")),
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

# With the demo organization: payments-prod-eu is below payments' OUs.
test_example_data_payments_nested_account_allowed if {
	d := authz.decision with input as org_share_input("CreateTemplateShare", "payments", "222233334444", member_account("222233334444"))
	allowed(d)
}

# ---------------------------------------------------------------------------
# Drift scan: an existing share is judged with the input of its creation plus
# "scan" (share id, status), the caller's team being the resource owner's tag
# ("" when untagged). The decision must be the one creating it would get today.
# ---------------------------------------------------------------------------

scan_input(team, target_type, shared_with, status) := object.union(
	share_input("CreateTemplateShare", team, target_type, shared_with),
	{"scan": {"share_id": "11112222333344445555666677778888", "status": status}},
)

test_scan_of_a_compliant_share_allows if {
	allowed(decide(scan_input("alpha", "ou", "ou-aaaa-11111111", "ACCEPTED")))
}

test_scan_of_a_share_no_longer_approved_denies_with_the_creation_reason if {
	d := decide(scan_input("alpha", "ou", "ou-abcd-99999999", "PENDING"))
	denied(d)
	d.reasons == ["team \"alpha\" may not share review-template with ou \"ou-abcd-99999999\": not in the team's approved OUs"]
}

test_scan_of_an_untagged_resource_denies if {
	denied(decide(scan_input("", "ou", "ou-aaaa-11111111", "ACCEPTED")))
}

test_scan_status_does_not_change_the_decision if {
	every status in ["ACCEPTED", "PENDING", "REJECTED", "EXPIRED", "REVOKED", "ASSOCIATING", "ASSOCIATED", "FAILED"] {
		allowed(decide(scan_input("alpha", "ou", "ou-aaaa-11111111", status)))
	}
}
