# The team data (data.waguard.teams) shaped for the question authz.rego asks
# of every share: "whom may team T share with through operation O?", answered
# by one lookup, data.waguard.index.teams[T].shares[O].
#
# This package reads only data, never input, so waguard evaluates it once when
# the policy loads and serves the result as data (src/policy/prepare.rs).
# `waguard policy test` evaluates it like any other rule, so a test that
# replaces data.waguard.teams sees the index of its own team data.
package waguard.index

import rego.v1

# The share-creating operations, each with the resource type it shares. The
# resource type comes from the operation, not from input.resource.type, so it
# is always one of these four.
share_operations := {
	"CreateTemplateShare": "review-template",
	"CreateWorkloadShare": "workload",
	"CreateLensShare": "lens",
	"CreateProfileShare": "profile",
}

# The list of a team entry that approves each type of share target, and how
# reasons name it.
approval_lists := {
	"account": {"list": "accounts", "label": "accounts"},
	"organization": {"list": "organizations", "label": "organizations"},
	"ou": {"list": "ous", "label": "OUs"},
	"iam_principal": {"list": "principals", "label": "principals"},
}

# Every team entry, as authz.rego reads it:
#
#   teams[T] = {
#     "allow_contributor": bool,       # only a literal true in the team data counts
#     "shares": {
#       "CreateLensShare": {           # one entry per share-creating operation
#         "resource_type": "lens",
#         "targets": {
#           "ou": {                    # one entry per target type
#             "ids": {"ou-ab12-11111111", ...},
#             "label": "OUs",          # the list, as reasons name it
#             "scope": " for lens shares"  # "" unless a resource override decided
#           },
#           ...
#         }
#       },
#       ...
#     }
#   }
#
# A team named "" gets no entry: a caller without a team name is not mapped
# to any team, whatever the team data says.
teams[name] := {
	"allow_contributor": object.get(entry, "allow_contributor", false) == true,
	"shares": {operation: approvals(entry, resource_type) | some operation, resource_type in share_operations},
} if {
	some name, entry in data.waguard.teams
	name != ""
	is_object(entry)
}

# A team's approved targets for shares of one resource type, by target type.
approvals(entry, resource_type) := {
	"resource_type": resource_type,
	"targets": {target_type: approved(entry, resource_type, list) | some target_type, list in approval_lists},
}

# A resource_overrides entry replaces (not extends) one list for one resource
# type, and the scope (" for lens shares") then tells the caller which list
# decided; an override of false still replaces the list, with no scope. Lists
# an override does not name come from the team's top-level lists. A missing
# list approves nothing.
approved(entry, resource_type, list) := {"ids": id_set(ids), "label": list.label, "scope": scope} if {
	ids := entry.resource_overrides[resource_type][list.list]
	scope := override_scope(ids, resource_type)
} else := {"ids": id_set(object.get(entry, list.list, [])), "label": list.label, "scope": ""}

# The ids of a list, as a set. A list that is not a list approves nothing, and
# neither does an empty id.
id_set(ids) := {id | some id in ids; id != ""} if {
	type_name(ids) in {"array", "set", "object"}
} else := set()

override_scope(ids, _) := "" if ids == false

override_scope(ids, resource_type) := sprintf(" for %s shares", [resource_type]) if ids != false
