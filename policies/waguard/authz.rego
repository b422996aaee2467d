# waguard default authorization policy.
#
# The gateway evaluates data.waguard.authz.decision once per request and
# expects {"allow": bool, "reasons": [string]}. Deny reasons are shown to the
# denied caller (in the AccessDeniedException message), so each one says what
# was denied and why.
#
# What the policy enforces:
#   * A caller whose team has no entry in data.waguard.teams is denied,
#     whatever the operation: unknown teams are not onboarded.
#   * Read operations (input.access == "read": Get*/List*/Export*) are allowed.
#   * Share-creating operations (CreateTemplateShare, CreateWorkloadShare,
#     CreateLensShare, CreateProfileShare) are allowed only when
#     input.share.shared_with is on the team's approved list for its
#     input.share.target_type (account, organization, ou). Any other target
#     type (e.g. "unknown", or an IAM user/role ARN) is always denied, because
#     it cannot be approved.
#   * Workload shares also carry a PermissionType. READONLY may always be
#     granted; CONTRIBUTOR only by a team with "allow_contributor": true. This
#     is checked on UpdateWorkloadShare (which changes the permission of an
#     existing share) and also on CreateWorkloadShare, since otherwise a team
#     could create a CONTRIBUTOR share directly and skip the Update check.
#   * Share removal (Delete{Template,Workload,Lens,Profile}Share) only narrows
#     access, so it is allowed for any known team.
#   * Every other operation is denied.
#
# Team data (policies/waguard/teams.json, loaded as data.waguard.teams):
#   {
#     "<team>": {
#       "accounts":      ["111122223333", ...],   # 12-digit account IDs, as strings
#       "organizations": ["o-exampleorg01", ...],
#       "ous":           ["ou-ab12-11111111", ...],
#       "allow_contributor": false,              # optional, default false
#       "resource_overrides": {                  # optional
#         "<resource type>": {"ous": [...]}      # replaces that one list for that
#       },                                       # resource type only
#       "description": "..."                     # optional, ignored by the policy
#     }
#   }
# The three lists apply to every resource type (review-template, workload,
# lens, profile). A resource_overrides entry replaces (not extends) the named
# list for shares of that resource type; lists it does not name still come
# from the team's top-level lists. A missing list means "nothing approved".
#
# Shape of the decision: deny overrides allow. A request is allowed only when
# at least one rule positively allowed it and no rule denied it; a request no
# rule recognised is denied (fail closed).
package waguard.authz

import rego.v1

decision := {"allow": false, "reasons": sort(deny_reasons)} if {
	count(deny_reasons) > 0
} else := {"allow": true, "reasons": sort(allow_reasons)} if {
	count(allow_reasons) > 0
} else := {"allow": false, "reasons": [no_rule_matched_reason]}

no_rule_matched_reason := "request denied by default: no waguard rule allows it"

# ---------------------------------------------------------------------------
# Operation tables
# ---------------------------------------------------------------------------

# Share-creating operations, each with the resource type it shares. The
# resource type comes from the operation name rather than from
# input.resource.type, so it is always set and always one of the four.
share_create_operations := {
	"CreateTemplateShare": "review-template",
	"CreateWorkloadShare": "workload",
	"CreateLensShare": "lens",
	"CreateProfileShare": "profile",
}

# Operations that grant a workload-share PermissionType.
workload_permission_operations := {"CreateWorkloadShare", "UpdateWorkloadShare"}

# Share removal only narrows who can see a resource.
share_delete_operations := {
	"DeleteTemplateShare",
	"DeleteWorkloadShare",
	"DeleteLensShare",
	"DeleteProfileShare",
}

# Target type (input.share.target_type) -> the team data list that approves it.
target_lists := {
	"account": "accounts",
	"organization": "organizations",
	"ou": "ous",
}

# How each list is named in messages.
list_labels := {
	"accounts": "accounts",
	"organizations": "organizations",
	"ous": "OUs",
}

# PermissionType values AWS accepts on workload shares.
known_permissions := {"READONLY", "CONTRIBUTOR"}

# ---------------------------------------------------------------------------
# Normalised input. Every value below is a string (possibly empty), so the
# messages built from them never fail to render.
# ---------------------------------------------------------------------------

operation := op if {
	op := input.operation
	is_string(op)
} else := ""

principal := p if {
	p := input.caller.principal
	is_string(p)
} else := ""

team_name := t if {
	t := input.caller.team
	is_string(t)
} else := ""

read_access if input.access == "read"

# ---------------------------------------------------------------------------
# Team
# ---------------------------------------------------------------------------

# The caller's team entry; undefined when the team has no entry.
team := data.waguard.teams[team_name] if {
	team_name != ""
	is_object(data.waguard.teams[team_name])
}

known_team if team

deny_reasons contains msg if {
	team_name == ""
	msg := sprintf("caller %q is not mapped to any team, so waguard cannot authorize operation %q", [principal, operation])
}

deny_reasons contains msg if {
	team_name != ""
	not known_team
	msg := sprintf("team %q (caller %q) has no entry in waguard's team data, so it may not call %s", [team_name, principal, operation])
}

# All rules below require a known team, so an unknown team gets exactly the
# one reason above instead of a list of misleading per-operation reasons.

# ---------------------------------------------------------------------------
# Read operations
# ---------------------------------------------------------------------------

# Share-creating and share-updating operations are always write operations in
# the service model; they are excluded here anyway, so a mislabelled access
# can never skip their checks.
allow_reasons contains msg if {
	known_team
	read_access
	not share_create_operations[operation]
	not operation in workload_permission_operations
	msg := sprintf("%s is a read-only operation", [operation])
}

# ---------------------------------------------------------------------------
# Share creation: the target must be on the team's approved list
# ---------------------------------------------------------------------------

share_resource_type := share_create_operations[operation]

target_type := tt if {
	share_resource_type
	tt := input.share.target_type
	is_string(tt)
} else := ""

shared_with := sw if {
	share_resource_type
	sw := input.share.shared_with
	is_string(sw)
} else := ""

# Which team list approves this target; undefined for unknown target types.
target_list := target_lists[target_type] if share_resource_type

# A per-resource-type override replaces the team's top-level list.
approved_targets := list if {
	list := team.resource_overrides[share_resource_type][target_list]
} else := list if {
	list := object.get(team, target_list, [])
}

# " for lens shares" when an override decided, so the caller knows which list.
approved_scope := scope if {
	team.resource_overrides[share_resource_type][target_list]
	scope := sprintf(" for %s shares", [share_resource_type])
} else := ""

deny_reasons contains msg if {
	known_team
	share_resource_type
	not target_list
	msg := sprintf(
		"team %q may not share %s with %q: target type %q cannot be approved (only account IDs, organization IDs and OU IDs can)",
		[team_name, share_resource_type, shared_with, target_type],
	)
}

deny_reasons contains msg if {
	known_team
	target_list
	shared_with == ""
	msg := sprintf("team %q may not share %s: the request names no SharedWith target", [team_name, share_resource_type])
}

deny_reasons contains msg if {
	known_team
	target_list
	shared_with != ""
	not shared_with in approved_targets
	msg := sprintf(
		"team %q may not share %s with %s %q: not in the team's approved %s%s",
		[team_name, share_resource_type, target_type, shared_with, list_labels[target_list], approved_scope],
	)
}

allow_reasons contains msg if {
	known_team
	target_list
	shared_with != ""
	shared_with in approved_targets
	msg := sprintf("%s %q is approved for team %q%s", [target_type, shared_with, team_name, approved_scope])
}

# ---------------------------------------------------------------------------
# Workload share permissions: READONLY always, CONTRIBUTOR only if allowed
# ---------------------------------------------------------------------------

# The gateway sends it as input.share.permission_type; the request body is
# the fallback, since that is what AWS acts on.
permission_type := pt if {
	operation in workload_permission_operations
	pt := input.share.permission_type
	is_string(pt)
} else := pt if {
	operation in workload_permission_operations
	pt := input.request.body.PermissionType
	is_string(pt)
} else := ""

grantable_permissions contains "READONLY" if known_team

# Only a literal true counts; a string "true" or a missing key does not.
grantable_permissions contains "CONTRIBUTOR" if team.allow_contributor == true

deny_reasons contains msg if {
	known_team
	operation in workload_permission_operations
	permission_type == ""
	msg := sprintf("team %q may not call %s without a PermissionType: waguard cannot tell what it would grant", [team_name, operation])
}

deny_reasons contains msg if {
	known_team
	permission_type != ""
	not permission_type in known_permissions
	msg := sprintf("team %q may not grant PermissionType %q on a workload share: it is neither READONLY nor CONTRIBUTOR", [team_name, permission_type])
}

deny_reasons contains msg if {
	known_team
	permission_type in known_permissions
	not permission_type in grantable_permissions
	msg := sprintf(
		"team %q may not grant %s on a workload share (%s): the team's data does not set allow_contributor to true",
		[team_name, permission_type, operation],
	)
}

allow_reasons contains msg if {
	known_team
	permission_type in grantable_permissions
	msg := sprintf("team %q may grant %s on workload shares", [team_name, permission_type])
}

# ---------------------------------------------------------------------------
# Share removal
# ---------------------------------------------------------------------------

allow_reasons contains msg if {
	known_team
	operation in share_delete_operations
	msg := sprintf("%s only removes a share, which narrows access", [operation])
}

# ---------------------------------------------------------------------------
# Everything else
# ---------------------------------------------------------------------------

governed_write_operation if share_create_operations[operation]

governed_write_operation if operation in workload_permission_operations

governed_write_operation if operation in share_delete_operations

# Anything that is not a read and not governed above. A missing or unexpected
# input.access counts as a write.
deny_reasons contains msg if {
	known_team
	not read_access
	not governed_write_operation
	msg := sprintf("operation %q is not permitted through waguard: waguard allows only read operations and governed share changes", [operation])
}
