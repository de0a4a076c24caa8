# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_cloud_global_optspecs
    string join \n root= color= v/verbose h/help V/version
end

function __fish_cloud_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_cloud_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_cloud_using_subcommand
    set -l cmd (__fish_cloud_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c cloud -n "__fish_cloud_needs_command" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_needs_command" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_needs_command" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_needs_command" -s h -l help -d 'Print help'
complete -c cloud -n "__fish_cloud_needs_command" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "deploy" -d 'Deploy a deployment\'s stacks in dependency order'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "destroy" -d 'Destroy a deployment\'s stacks, dependents first'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "validate" -d 'Check a deployment\'s manifest without deploying'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "graph" -d 'Show the stacks by dependency layer'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "status" -d 'Show the state of the latest run'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "notify" -d 'Check the manifest\'s notification channels'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "serve" -d 'Serve the dashboard, REST API and WebSocket stream of the runs under --root'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "watch" -d 'Show a deployment running elsewhere, fed by its server'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "token" -d 'Mint a token for the server (signed with CLOUD_JWT_SECRET)'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "logs" -d 'Show the file log of the latest run'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "events" -d 'List the audit trail (DynamoDB when configured, else the journal); manage its table'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "history" -d 'List the runs of a deployment: when, who, how they ended'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "unlock" -d 'Remove a lock a run left behind (a leftover lock file, an expired DynamoDB lease)'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c cloud -n "__fish_cloud_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -s e -l environment -d 'The environment to deploy to (one of the manifest\'s `environments`)' -r
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -s p -l parallelism -d 'Deploy at most N stacks at once (default: the manifest\'s `parallelism`, else no limit)' -r
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -s o -l output -d 'Output format' -r -f -a "text\t'For people: a live view, or plain lines when not on a terminal'
json\t'One JSON object per line (events) or one document (status)'"
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l grace-period -d 'Seconds a stopping stack gets after SIGINT before it is killed' -r
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l only -d 'Deploy only these stacks (the others keep their last deploy)' -r
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l report -d 'Write the run\'s summary (per stack: status, times, resources, error) as JSON here' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l junit -d 'Write the run as JUnit XML here (each stack a test case), for CI systems' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l serve -d 'Serve this run\'s dashboard, REST API and WebSocket stream while it runs' -r
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l dynamodb-table -d 'DynamoDB table of the audit trail (else the manifest\'s `eventStore.dynamodb.table`; neither: the local journal only)' -r
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l fail-fast -d 'After the first failure start no new stack (running ones finish)'
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -s i -l interactive -d 'Full-screen view: select a stack, see its resources and logs'
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l exit-on-done -d 'Leave the interactive view as soon as the deploy ends'
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l force -d 'Deploy every stack, even those unchanged since their last successful deploy'
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l rollback-on-failure -d 'When the deploy fails, roll back the stacks it deployed, in reverse dependency order'
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l no-notify -d 'Send no notifications for this run (email, Slack, PagerDuty, webhooks)'
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -l cloudwatch -d 'Also send every event to CloudWatch Logs (group /cloud/deployments/<ID>)'
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cloud -n "__fish_cloud_using_subcommand deploy" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -s e -l environment -d 'The environment to destroy (one of the manifest\'s `environments`)' -r
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -s p -l parallelism -d 'Destroy at most N stacks at once (default: the manifest\'s `parallelism`, else no limit)' -r
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -s o -l output -d 'Output format' -r -f -a "text\t'For people: a live view, or plain lines when not on a terminal'
json\t'One JSON object per line (events) or one document (status)'"
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -l grace-period -d 'Seconds a stopping stack gets after SIGINT before it is killed' -r
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -l dynamodb-table -d 'DynamoDB table of the audit trail (else the manifest\'s `eventStore.dynamodb.table`; neither: the local journal only)' -r
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -s y -l yes -d 'Do not ask for confirmation (required when stdin is not a terminal)'
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -l fail-fast -d 'After the first failure start no new stack (running ones finish)'
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -s i -l interactive -d 'Full-screen view: select a stack, see its resources and logs'
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -l exit-on-done -d 'Leave the interactive view as soon as the destroy ends'
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -l no-notify -d 'Send no notifications for this destroy (email, Slack, PagerDuty, webhooks)'
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -l cloudwatch -d 'Also send every event to CloudWatch Logs (group /cloud/deployments/<ID>)'
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cloud -n "__fish_cloud_using_subcommand destroy" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand validate" -s e -l environment -d 'Also check that this environment is listed' -r
complete -c cloud -n "__fish_cloud_using_subcommand validate" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand validate" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand validate" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand validate" -s h -l help -d 'Print help'
complete -c cloud -n "__fish_cloud_using_subcommand validate" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand graph" -s f -l format -d 'text (by layer), dot (Graphviz) or json' -r -f -a "text\t''
dot\t''
json\t''"
complete -c cloud -n "__fish_cloud_using_subcommand graph" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand graph" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand graph" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand graph" -s h -l help -d 'Print help'
complete -c cloud -n "__fish_cloud_using_subcommand graph" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand status" -s e -l environment -d 'The environment' -r
complete -c cloud -n "__fish_cloud_using_subcommand status" -s o -l output -d 'text, or json (the REST status `data` object)' -r -f -a "text\t'For people: a live view, or plain lines when not on a terminal'
json\t'One JSON object per line (events) or one document (status)'"
complete -c cloud -n "__fish_cloud_using_subcommand status" -l dynamodb-table -d 'DynamoDB table of the audit trail (else the manifest\'s `eventStore.dynamodb.table`; neither: the local journal only)' -r
complete -c cloud -n "__fish_cloud_using_subcommand status" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand status" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand status" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cloud -n "__fish_cloud_using_subcommand status" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand notify; and not __fish_seen_subcommand_from test help" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand notify; and not __fish_seen_subcommand_from test help" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand notify; and not __fish_seen_subcommand_from test help" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand notify; and not __fish_seen_subcommand_from test help" -s h -l help -d 'Print help'
complete -c cloud -n "__fish_cloud_using_subcommand notify; and not __fish_seen_subcommand_from test help" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand notify; and not __fish_seen_subcommand_from test help" -f -a "test" -d 'Send a test message to every configured channel and report each result'
complete -c cloud -n "__fish_cloud_using_subcommand notify; and not __fish_seen_subcommand_from test help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cloud -n "__fish_cloud_using_subcommand notify; and __fish_seen_subcommand_from test" -s e -l environment -d 'The environment the test message names (default: the manifest\'s first)' -r
complete -c cloud -n "__fish_cloud_using_subcommand notify; and __fish_seen_subcommand_from test" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand notify; and __fish_seen_subcommand_from test" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand notify; and __fish_seen_subcommand_from test" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand notify; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help'
complete -c cloud -n "__fish_cloud_using_subcommand notify; and __fish_seen_subcommand_from test" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand notify; and __fish_seen_subcommand_from help" -f -a "test" -d 'Send a test message to every configured channel and report each result'
complete -c cloud -n "__fish_cloud_using_subcommand notify; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cloud -n "__fish_cloud_using_subcommand serve" -l addr -d 'Where to listen (anything but loopback needs CLOUD_JWT_SECRET)' -r
complete -c cloud -n "__fish_cloud_using_subcommand serve" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand serve" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand serve" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand serve" -s h -l help -d 'Print help'
complete -c cloud -n "__fish_cloud_using_subcommand serve" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand watch" -s e -l environment -d 'The environment' -r
complete -c cloud -n "__fish_cloud_using_subcommand watch" -l url -d 'The server, e.g. ws://127.0.0.1:7070' -r
complete -c cloud -n "__fish_cloud_using_subcommand watch" -l token -d 'A token for the server (default: one minted with CLOUD_JWT_SECRET)' -r
complete -c cloud -n "__fish_cloud_using_subcommand watch" -s o -l output -d 'Output format' -r -f -a "text\t'For people: a live view, or plain lines when not on a terminal'
json\t'One JSON object per line (events) or one document (status)'"
complete -c cloud -n "__fish_cloud_using_subcommand watch" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand watch" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand watch" -s i -l interactive -d 'Full-screen view: select a stack, see its resources and logs'
complete -c cloud -n "__fish_cloud_using_subcommand watch" -l exit-on-done -d 'Leave the interactive view as soon as the deploy ends'
complete -c cloud -n "__fish_cloud_using_subcommand watch" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cloud -n "__fish_cloud_using_subcommand watch" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand token" -s d -l deployment -d 'Limit the token to this deployment (repeat for more; default: all)' -r
complete -c cloud -n "__fish_cloud_using_subcommand token" -l ttl -d 'How long the token is valid: 90s, 30m, 1h, 7d' -r
complete -c cloud -n "__fish_cloud_using_subcommand token" -l subject -d 'Whom the token names (its `sub`; default: the current user)' -r
complete -c cloud -n "__fish_cloud_using_subcommand token" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand token" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand token" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand token" -s h -l help -d 'Print help'
complete -c cloud -n "__fish_cloud_using_subcommand token" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand logs" -s e -l environment -d 'The environment' -r
complete -c cloud -n "__fish_cloud_using_subcommand logs" -l stack -d 'Only lines about this stack' -r
complete -c cloud -n "__fish_cloud_using_subcommand logs" -l level -d 'Only lines at this level or above' -r -f -a "debug\t''
info\t''
warn\t''
error\t''"
complete -c cloud -n "__fish_cloud_using_subcommand logs" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand logs" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand logs" -s f -l follow -d 'Keep printing lines as they are written, until the run ends'
complete -c cloud -n "__fish_cloud_using_subcommand logs" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand logs" -s h -l help -d 'Print help'
complete -c cloud -n "__fish_cloud_using_subcommand logs" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -s e -l environment -d 'Only this environment' -r
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -l since -d 'Only events from this time on: 2025-10-09T14:30:00Z, 2025-10-09, or ago: 30m, 2h, 7d' -r
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -l type -d 'Only events of this type (e.g. stack_failed)' -r
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -l stack -d 'Only events about this stack' -r
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -l run -d 'Only events of this run' -r
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -s o -l output -d 'text (one line per event), or json (one event envelope per line)' -r -f -a "text\t'For people: a live view, or plain lines when not on a terminal'
json\t'One JSON object per line (events) or one document (status)'"
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -l dynamodb-table -d 'DynamoDB table of the audit trail (else the manifest\'s `eventStore.dynamodb.table`; neither: the local journal only)' -r
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -a "init-table" -d 'Create the DynamoDB table of the audit trail (on-demand billing)'
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -a "sync" -d 'Send the events waiting in the local spool to DynamoDB'
complete -c cloud -n "__fish_cloud_using_subcommand events; and not __fish_seen_subcommand_from init-table sync help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from init-table" -l dynamodb-table -d 'DynamoDB table of the audit trail (else the manifest\'s `eventStore.dynamodb.table`; neither: the local journal only)' -r
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from init-table" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from init-table" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from init-table" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from init-table" -s h -l help -d 'Print help'
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from init-table" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from sync" -l dynamodb-table -d 'DynamoDB table of the audit trail (else the manifest\'s `eventStore.dynamodb.table`; neither: the local journal only)' -r
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from sync" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from sync" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from sync" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from sync" -s h -l help -d 'Print help'
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from sync" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from help" -f -a "init-table" -d 'Create the DynamoDB table of the audit trail (on-demand billing)'
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from help" -f -a "sync" -d 'Send the events waiting in the local spool to DynamoDB'
complete -c cloud -n "__fish_cloud_using_subcommand events; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cloud -n "__fish_cloud_using_subcommand history" -s e -l environment -d 'Only this environment' -r
complete -c cloud -n "__fish_cloud_using_subcommand history" -s o -l output -d 'text (a table), or json (one object per run)' -r -f -a "text\t'For people: a live view, or plain lines when not on a terminal'
json\t'One JSON object per line (events) or one document (status)'"
complete -c cloud -n "__fish_cloud_using_subcommand history" -l dynamodb-table -d 'DynamoDB table of the audit trail (else the manifest\'s `eventStore.dynamodb.table`; neither: the local journal only)' -r
complete -c cloud -n "__fish_cloud_using_subcommand history" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand history" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand history" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand history" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cloud -n "__fish_cloud_using_subcommand history" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand unlock" -s e -l environment -d 'The environment' -r
complete -c cloud -n "__fish_cloud_using_subcommand unlock" -l dynamodb-table -d 'DynamoDB table of the audit trail (else the manifest\'s `eventStore.dynamodb.table`; neither: the local journal only)' -r
complete -c cloud -n "__fish_cloud_using_subcommand unlock" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand unlock" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand unlock" -l force -d 'Also remove a DynamoDB lock whose lease is still live (its run\'s machine is gone)'
complete -c cloud -n "__fish_cloud_using_subcommand unlock" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand unlock" -s h -l help -d 'Print help'
complete -c cloud -n "__fish_cloud_using_subcommand unlock" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand completions" -l root -d 'Folder holding `cloud/deploy/<ID>/deployment.yaml`' -r -F
complete -c cloud -n "__fish_cloud_using_subcommand completions" -l color -d 'When to use colour (NO_COLOR turns `auto` off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c cloud -n "__fish_cloud_using_subcommand completions" -s v -l verbose -d 'Print one timestamped line per change (the view for CI and pipes)'
complete -c cloud -n "__fish_cloud_using_subcommand completions" -s h -l help -d 'Print help'
complete -c cloud -n "__fish_cloud_using_subcommand completions" -s V -l version -d 'Print version'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "deploy" -d 'Deploy a deployment\'s stacks in dependency order'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "destroy" -d 'Destroy a deployment\'s stacks, dependents first'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "validate" -d 'Check a deployment\'s manifest without deploying'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "graph" -d 'Show the stacks by dependency layer'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "status" -d 'Show the state of the latest run'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "notify" -d 'Check the manifest\'s notification channels'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "serve" -d 'Serve the dashboard, REST API and WebSocket stream of the runs under --root'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "watch" -d 'Show a deployment running elsewhere, fed by its server'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "token" -d 'Mint a token for the server (signed with CLOUD_JWT_SECRET)'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "logs" -d 'Show the file log of the latest run'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "events" -d 'List the audit trail (DynamoDB when configured, else the journal); manage its table'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "history" -d 'List the runs of a deployment: when, who, how they ended'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "unlock" -d 'Remove a lock a run left behind (a leftover lock file, an expired DynamoDB lease)'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c cloud -n "__fish_cloud_using_subcommand help; and not __fish_seen_subcommand_from deploy destroy validate graph status notify serve watch token logs events history unlock completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cloud -n "__fish_cloud_using_subcommand help; and __fish_seen_subcommand_from notify" -f -a "test" -d 'Send a test message to every configured channel and report each result'
complete -c cloud -n "__fish_cloud_using_subcommand help; and __fish_seen_subcommand_from events" -f -a "init-table" -d 'Create the DynamoDB table of the audit trail (on-demand billing)'
complete -c cloud -n "__fish_cloud_using_subcommand help; and __fish_seen_subcommand_from events" -f -a "sync" -d 'Send the events waiting in the local spool to DynamoDB'
