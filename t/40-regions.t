# Region routing and key choice: which upstream receives each request,
# with which Authorization and which on-behalf-of, across exact names,
# regexes, default regions, a custom subuser source, subuser keys, a
# region without a key, and inheritance across http, server and location.

use strict;
use warnings;

use Test::More;
use SGTest qw(is_sendgrid_error header_pairs);

# sendgrid_upstream_host is set per server below, so that one server can
# show the built-in hosts
my $t = SGTest->new(no_upstream_hosts => 1);

my %key;
for my $name (qw(global eu gl legacy acme beta keyed-eu loc-global loc-eu
                 srv-sub))
{
    $key{$name} = "SG.$name-test-key.0123456789ABCDEFghijkl";
    $t->key_file("keys/$name.key", "$key{$name}\n");
}

# X-Subuser shows the value in brackets: add_header omits an empty value
my $expose = <<'EXPOSE';
            add_header X-Subuser "[$sendgrid_subuser]" always;
            add_header X-Region "$sendgrid_region" always;
            add_header X-Upstream-Host "$sendgrid_upstream_host" always;
EXPOSE

my $hosts = <<'HOSTS';
        sendgrid_upstream_host global sendgrid_global;
        sendgrid_upstream_host eu sendgrid_eu;
HOSTS

my $conf = <<'CONF';
    # the parent key of the global region, for every server
    sendgrid_api_key_file %%DIR%%/keys/global.key;

    # inherited by the servers that define no table of their own
    sendgrid_subuser_region httpglobal global;
    sendgrid_subuser_region ~^h-eu- eu;
    sendgrid_subuser_region keyed-eu eu %%DIR%%/keys/keyed-eu.key;

    # the global mock under another name, to see an overridden host
    upstream sendgrid_alt { server 127.0.0.1:%%PORT_GLOBAL%%; }

    map $http_x_team $team {
        default  "";
        red      acme;
        blue     eu-blue;
        tab      "bad\tname";
        lf       "bad\nname";
        cr       "bad\rname";
        ctl      "bad\x01name";
        del      "bad\x7fname";
    }

    # subusers that are not valid header values; $sendgrid_subuser is not
    # echoed in a response header here
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name ctl.test;

        sendgrid_api_key_file %%DIR%%/keys/eu.key eu;
        sendgrid_subuser_region ~^bad eu;
HOSTS
        location = /v3/marketing/integrations {
            sendgrid_integrations on;
            sendgrid_subuser $team;
            proxy_pass http://$sendgrid_upstream_host;
            add_header X-Region "$sendgrid_region" always;
            add_header X-Upstream-Host "$sendgrid_upstream_host" always;
        }

        location /v3/marketing/integrations/ {
            sendgrid_integrations on;
            proxy_pass http://$sendgrid_upstream_host;
            add_header X-Region "$sendgrid_region" always;
            add_header X-Upstream-Host "$sendgrid_upstream_host" always;
        }
    }

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name inherit.test;

        sendgrid_api_key_file %%DIR%%/keys/eu.key eu;
        sendgrid_default_region eu;
        sendgrid_subuser_region srv-sub global %%DIR%%/keys/srv-sub.key;
        sendgrid_subuser_region srv-global global;
        sendgrid_subuser_region ~^srv-eu- eu;
HOSTS
        # the server's table, default region, hosts and EU key; its own
        # global key
        location = /v3/marketing/integrations {
            sendgrid_integrations on;
            sendgrid_api_key_file %%DIR%%/keys/loc-global.key;
            proxy_pass http://$sendgrid_upstream_host;
EXPOSE
        }

        # its own table (the server's is gone), default region, global
        # host and EU key; the global key of http{}
        location /v3/marketing/integrations/ {
            sendgrid_integrations on;
            sendgrid_api_key_file %%DIR%%/keys/loc-eu.key eu;
            sendgrid_default_region global;
            sendgrid_upstream_host global sendgrid_alt;
            sendgrid_subuser_region loc-sub eu;
            proxy_pass http://$sendgrid_upstream_host;
EXPOSE
        }
    }

    # the subuser from a capture of the location's regex
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name capture.test;
HOSTS
        location ~ ^/v3/marketing/integrations/(\w+)$ {
            sendgrid_integrations on;
            sendgrid_subuser $1;
            proxy_pass http://$sendgrid_upstream_host;
EXPOSE
        }
    }

    # no sendgrid_upstream_host at any level: the built-in hosts; only
    # refused requests are sent here, nothing is proxied
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name defaults.test;

        sendgrid_api_key_file %%DIR%%/keys/eu.key eu;

        location /v3/marketing/integrations {
            sendgrid_integrations on;
            proxy_pass http://$sendgrid_upstream_host;
EXPOSE
        }

        location = /hosts {
            return 200 "$sendgrid_upstream_host $sendgrid_region $sendgrid_subuser";
        }
    }
CONF

# servers that are the gateway location with directives around it
$conf .= SGTest::gateway_server(@$_, location => 'EXPOSE') for
    [ 'localhost', <<'CONF', default_server => 1 ],
        sendgrid_api_key_file %%DIR%%/keys/eu.key eu;
        HOSTS
        # exact names are looked up before any regex, whatever their place
        sendgrid_subuser_region ~^eu- eu;
        sendgrid_subuser_region ~^gl- global %%DIR%%/keys/gl.key;
        sendgrid_subuser_region ~^gl eu;
        sendgrid_subuser_region ~*^emea- eu;
        sendgrid_subuser_region acme eu;
        sendgrid_subuser_region eu-legacy global %%DIR%%/keys/legacy.key;
        sendgrid_subuser_region acme-key eu %%DIR%%/keys/acme.key;
        sendgrid_subuser_region Beta eu;
        sendgrid_subuser_region beta global %%DIR%%/keys/beta.key;
CONF
    [ 'eudefault.test', <<'CONF' ],
        sendgrid_api_key_file %%DIR%%/keys/eu.key eu;
        sendgrid_default_region eu;
        HOSTS
CONF
    [ 'team.test', <<'CONF' ],
        sendgrid_api_key_file %%DIR%%/keys/eu.key eu;
        sendgrid_subuser $team;
        sendgrid_subuser_region acme eu;
        HOSTS
CONF
    # the subuser as text around a variable: run by nginx's script engine,
    # where a variable alone is read as it is
    [ 'prefixed.test', <<'CONF' ],
        sendgrid_api_key_file %%DIR%%/keys/eu.key eu;
        sendgrid_subuser "eu-${http_x_team}";
        sendgrid_subuser_region ~^eu- eu;
        HOSTS
CONF
    # no EU parent key at any level of this server
    [ 'nokey.test', 'HOSTS' ];

$conf =~ s/^[ \t]*HOSTS\n/$hosts/mg;
$conf =~ s/^[ \t]*EXPOSE\n/$expose/mg;

# a raw control byte and DEL in the map's values
$conf =~ s/\\x01/\x01/g;
$conf =~ s/\\x7f/\x7f/g;

$t->start($conf);

my $post = '{"destination":"Segment","filters":{"email_events":["open"]},'
         . '"properties":{"write_key":"a123456","destination_region":"EU"}}';

my %mock_of = (sendgrid_global => 'global', sendgrid_eu => 'eu',
               sendgrid_alt => 'global');

my %ops = (
    list   => ['GET', '/v3/marketing/integrations', undef, 200],
    create => ['POST', '/v3/marketing/integrations', $post, 201],
    delete => ['DELETE', '/v3/marketing/integrations?ids=5a1234', undef, 204],
    get    => ['GET', '/v3/marketing/integrations/5a1234', undef, 200],
);

# One request, then what each mock received.
#   name, server, op, headers
#   forwarded: upstream_host (its mock receives it), key, obo (undef: none)
#   refused:   status, message (a regex)
#   subuser, region, host: the variables, as the response headers show
sub check {
    my (%c) = @_;
    my $name = $c{name};
    my ($method, $target, $body, $status) = @{$ops{$c{op} // 'list'}};

    my @headers = (Host => $c{server} // 'localhost',
                   authorization => 'Bearer SG.client-own-key',
                   'X-SG-Elas-ACL' => 'client-acl',
                   @{$c{headers} // []});
    push @headers, 'Content-Type' => 'application/json' if defined $body;

    my $r = $t->request($method, $target, headers => \@headers,
                        body => $body);

    is($r->{headers}{'x-subuser'}[0], "[$c{subuser}]",
       "$name: \$sendgrid_subuser")
        if exists $c{subuser};
    is($r->{headers}{'x-region'}[0], $c{region}, "$name: \$sendgrid_region")
        if exists $c{region};
    is($r->{headers}{'x-upstream-host'}[0], $c{host},
       "$name: \$sendgrid_upstream_host")
        if exists $c{host};

    if (!$c{host} || !$mock_of{$c{host}} || $c{status}) {
        is_sendgrid_error($r, $c{status}, $name, count => 1,
                          message => $c{message});
        $t->nothing_upstream($name);
        return $r;
    }

    is($r->{status}, $status, "$name: forwarded, status $status");
    my $u = $t->forwarded_once($mock_of{$c{host}}, $name);

    is_deeply([ header_pairs($u, 'host') ], [['Host', $c{host}]],
              "$name: Host upstream");
    is_deeply([ header_pairs($u, 'authorization') ],
              [['Authorization', "Bearer $key{$c{key}}"]],
              "$name: the $c{key} key, once");
    is_deeply([ header_pairs($u, 'on-behalf-of') ],
              defined $c{obo} ? [['on-behalf-of', $c{obo}]] : [],
              defined $c{obo} ? "$name: on-behalf-of: $c{obo}, once"
                              : "$name: no on-behalf-of upstream");
    is_deeply([ header_pairs($u, 'x-sg-elas-acl') ], [],
              "$name: no x-sg-elas-acl upstream");
    is($u->{method}, $method, "$name: method");
    is($u->{target}, $target, "$name: target");
    is($u->{body}, $body // '', "$name: body");

    return $r;
}

sub obo { return (headers => ['ON-BEHALF-OF' => $_[0]]) }


# exact names, case-sensitive

check(name => 'no subuser', host => 'sendgrid_global', key => 'global',
      obo => undef, subuser => '', region => 'global');
check(name => 'empty on-behalf-of', obo(''), host => 'sendgrid_global',
      key => 'global', obo => undef, subuser => '', region => 'global');
check(name => 'exact acme', obo('acme'), host => 'sendgrid_eu', key => 'eu',
      obo => 'acme', subuser => 'acme', region => 'eu');
check(name => 'exact acme, create', op => 'create', obo('acme'),
      host => 'sendgrid_eu', key => 'eu', obo => 'acme', region => 'eu');
check(name => 'exact acme, delete', op => 'delete', obo('acme'),
      host => 'sendgrid_eu', key => 'eu', obo => 'acme', region => 'eu');
check(name => 'exact acme, get', op => 'get', obo('acme'),
      host => 'sendgrid_eu', key => 'eu', obo => 'acme', region => 'eu');
check(name => 'ACME is not acme', obo('ACME'), host => 'sendgrid_global',
      key => 'global', obo => 'ACME', subuser => 'ACME', region => 'global');
check(name => 'Acme is not acme', obo('Acme'), host => 'sendgrid_global',
      key => 'global', obo => 'Acme', region => 'global');
check(name => 'acme2 is unlisted', obo('acme2'), host => 'sendgrid_global',
      key => 'global', obo => 'acme2', region => 'global');
check(name => 'unlisted subuser', obo('someone'), host => 'sendgrid_global',
      key => 'global', obo => 'someone', subuser => 'someone',
      region => 'global');

# two names listed that differ only in letter case
check(name => 'exact Beta', obo('Beta'), host => 'sendgrid_eu', key => 'eu',
      obo => 'Beta', region => 'eu');
check(name => 'exact beta, its own key', obo('beta'),
      host => 'sendgrid_global', key => 'beta', obo => undef,
      subuser => 'beta', region => 'global');
check(name => 'BETA is neither', obo('BETA'), host => 'sendgrid_global',
      key => 'global', obo => 'BETA', region => 'global');

# subuser key: used, and no on-behalf-of upstream
check(name => 'subuser key', obo('acme-key'), host => 'sendgrid_eu',
      key => 'acme', obo => undef, subuser => 'acme-key', region => 'eu');
check(name => 'subuser key, create', op => 'create', obo('acme-key'),
      host => 'sendgrid_eu', key => 'acme', obo => undef, region => 'eu');

# regexes
check(name => '~^eu-', obo('eu-team'), host => 'sendgrid_eu', key => 'eu',
      obo => 'eu-team', subuser => 'eu-team', region => 'eu');
check(name => '~ is case-sensitive', obo('EU-team'),
      host => 'sendgrid_global', key => 'global', obo => 'EU-team',
      region => 'global');
check(name => '~ is not anchored by itself', obo('xeu-team'),
      host => 'sendgrid_global', key => 'global', obo => 'xeu-team',
      region => 'global');
check(name => '~* lower', obo('emea-1'), host => 'sendgrid_eu', key => 'eu',
      obo => 'emea-1', region => 'eu');
check(name => '~* upper', obo('EMEA-2'), host => 'sendgrid_eu', key => 'eu',
      obo => 'EMEA-2', region => 'eu');
check(name => '~* mixed', obo('eMeA-3'), host => 'sendgrid_eu', key => 'eu',
      obo => 'eMeA-3', region => 'eu');

# exact before regex: eu-legacy matches ~^eu- listed before it
check(name => 'exact name before a regex', obo('eu-legacy'),
      host => 'sendgrid_global', key => 'legacy', obo => undef,
      subuser => 'eu-legacy', region => 'global');
check(name => 'exact match only, not a prefix', obo('eu-legacy2'),
      host => 'sendgrid_eu', key => 'eu', obo => 'eu-legacy2',
      region => 'eu');

# regexes in configuration order: gl-a matches ~^gl- and ~^gl
check(name => 'first matching regex wins', obo('gl-a'),
      host => 'sendgrid_global', key => 'gl', obo => undef,
      subuser => 'gl-a', region => 'global');
check(name => 'second regex', obo('glx'), host => 'sendgrid_eu', key => 'eu',
      obo => 'glx', region => 'eu');

# the client's own on-behalf-of never passes as sent, and two of them are
# refused, whichever nginx would take for $http_on_behalf_of
check(name => 'two client on-behalf-of',
      headers => ['on-behalf-of' => 'acme', 'On-Behalf-Of' => 'other'],
      status => 400, message => qr/^on-behalf-of must be sent at most once$/);


# sendgrid_default_region eu; the http{} table inherited

my %eud = (server => 'eudefault.test');
check(name => 'eu default: no subuser', %eud, host => 'sendgrid_eu',
      key => 'eu', obo => undef, subuser => '', region => 'eu');
check(name => 'eu default: unlisted', %eud, obo('someone'),
      host => 'sendgrid_eu', key => 'eu', obo => 'someone', region => 'eu');
check(name => 'eu default: acme is not in this table', %eud, obo('acme'),
      host => 'sendgrid_eu', key => 'eu', obo => 'acme', region => 'eu');
check(name => 'eu default: http table, global', %eud, obo('httpglobal'),
      host => 'sendgrid_global', key => 'global', obo => 'httpglobal',
      region => 'global');
check(name => 'eu default: http table, regex', %eud, obo('h-eu-1'),
      host => 'sendgrid_eu', key => 'eu', obo => 'h-eu-1', region => 'eu');
check(name => 'eu default: http table, subuser key', %eud, obo('keyed-eu'),
      host => 'sendgrid_eu', key => 'keyed-eu', obo => undef,
      region => 'eu');
check(name => 'server table replaces http table', obo('httpglobal'),
      host => 'sendgrid_global', key => 'global', obo => 'httpglobal',
      region => 'global');
check(name => 'server table replaces http table (regex)', obo('h-eu-1'),
      host => 'sendgrid_global', key => 'global', obo => 'h-eu-1',
      region => 'global');


# sendgrid_subuser from a map of a header

my %team = (server => 'team.test');
check(name => 'map: red is acme', %team,
      headers => ['X-Team' => 'red', 'on-behalf-of' => 'evil'],
      host => 'sendgrid_eu', key => 'eu', obo => 'acme', subuser => 'acme',
      region => 'eu');
check(name => 'map: red is acme, create', %team, op => 'create',
      headers => ['X-Team' => 'red', 'ON-BEHALF-OF' => 'acme'],
      host => 'sendgrid_eu', key => 'eu', obo => 'acme', region => 'eu');
check(name => 'map: blue is unlisted', %team,
      headers => ['X-Team' => 'blue', 'on-behalf-of' => 'acme'],
      host => 'sendgrid_global', key => 'global', obo => 'eu-blue',
      subuser => 'eu-blue', region => 'global');
check(name => 'map: no team, the client on-behalf-of is dropped', %team,
      headers => ['on-behalf-of' => 'acme'],
      host => 'sendgrid_global', key => 'global', obo => undef,
      subuser => '', region => 'global');


# sendgrid_subuser as text and a variable, an X-Team header missing or not

my %prefixed = (server => 'prefixed.test');
check(name => 'text and variable: eu-red', %prefixed,
      headers => ['X-Team' => 'red', 'on-behalf-of' => 'evil'],
      host => 'sendgrid_eu', key => 'eu', obo => 'eu-red',
      subuser => 'eu-red', region => 'eu');
check(name => 'text and variable: no X-Team', %prefixed,
      headers => ['on-behalf-of' => 'evil'],
      host => 'sendgrid_eu', key => 'eu', obo => 'eu-', subuser => 'eu-',
      region => 'eu');

check(name => 'a capture of the location', server => 'capture.test',
      op => 'get', headers => ['on-behalf-of' => 'evil'],
      host => 'sendgrid_global', key => 'global', obo => '5a1234',
      subuser => '5a1234', region => 'global');


# subusers that are not valid header values: refused, not forwarded

my %ctl = (server => 'ctl.test');
for my $team (qw(tab lf cr ctl del)) {
    check(name => "map: subuser with $team", %ctl,
          headers => ['X-Team' => $team], region => 'eu', status => 400,
          message => qr/subuser/);
}
check(name => 'map: a valid subuser here', %ctl,
      headers => ['X-Team' => 'red'], host => 'sendgrid_global',
      key => 'global', obo => 'acme', region => 'global');

# a control byte, DEL or a non-ASCII byte straight from the client (nginx
# refuses only NUL, CR and LF in a header value)
for my $byte ("\x01", "\x1f", "\t", "\x7f", "\xc3\xa9") {
    my $shown = join '', map { sprintf '\\x%02x', ord } split //, $byte;
    check(name => "client subuser with $shown", %ctl, op => 'get',
          headers => ['on-behalf-of' => "bad${byte}x"], region => 'eu',
          status => 400, message => qr/subuser/);
}
check(name => 'client subuser without one', %ctl, op => 'get',
      obo('bad-x'), host => 'sendgrid_eu', key => 'eu', obo => 'bad-x',
      region => 'eu');


# inheritance across server and location

my %inh = (server => 'inherit.test');
check(name => 'location: inherited default region and EU key', %inh,
      host => 'sendgrid_eu', key => 'eu', obo => undef, subuser => '',
      region => 'eu');
check(name => 'location: its own global key', %inh, obo('srv-global'),
      host => 'sendgrid_global', key => 'loc-global', obo => 'srv-global',
      region => 'global');
check(name => 'location: inherited table, subuser key', %inh,
      obo('srv-sub'), host => 'sendgrid_global', key => 'srv-sub',
      obo => undef, region => 'global');
check(name => 'location: inherited table, regex', %inh, obo('srv-eu-1'),
      host => 'sendgrid_eu', key => 'eu', obo => 'srv-eu-1', region => 'eu');
check(name => 'location: loc-sub is not in the server table', %inh,
      obo('loc-sub'), host => 'sendgrid_eu', key => 'eu', obo => 'loc-sub',
      region => 'eu');

my %item = (%inh, op => 'get');
check(name => 'item location: own default region, host, global key of http',
      %item, host => 'sendgrid_alt', key => 'global', obo => undef,
      subuser => '', region => 'global');
check(name => 'item location: own table, own EU key', %item, obo('loc-sub'),
      host => 'sendgrid_eu', key => 'loc-eu', obo => 'loc-sub',
      region => 'eu');
check(name => 'item location: server table gone (subuser key)', %item,
      obo('srv-sub'), host => 'sendgrid_alt', key => 'global',
      obo => 'srv-sub', region => 'global');
check(name => 'item location: server table gone (regex)', %item,
      obo('srv-eu-1'), host => 'sendgrid_alt', key => 'global',
      obo => 'srv-eu-1', region => 'global');


# a region without a key: 500, nothing forwarded

my %nokey = (server => 'nokey.test');
for my $op (qw(list create delete get)) {
    check(name => "no EU key: $op", %nokey, op => $op, obo('h-eu-1'),
          subuser => 'h-eu-1', region => 'eu', host => 'sendgrid_eu',
          status => 500, message => qr/key/);
}
check(name => 'no EU key: a subuser key still works', %nokey,
      obo('keyed-eu'), host => 'sendgrid_eu', key => 'keyed-eu',
      obo => undef, region => 'eu');
check(name => 'no EU key: global', %nokey, obo('other'),
      host => 'sendgrid_global', key => 'global', obo => 'other',
      region => 'global');


# the built-in hosts

my %def = (server => 'defaults.test', op => 'get');
my $bad = '/v3/marketing/integrations/bad.id';
for my $case ([undef, 'api.sendgrid.com', 'global'],
              ['h-eu-2', 'api.eu.sendgrid.com', 'eu'],
              ['httpglobal', 'api.sendgrid.com', 'global'])
{
    my ($sub, $host, $region) = @$case;
    my @h = (Host => 'defaults.test');
    push @h, 'on-behalf-of' => $sub if defined $sub;

    my $r = $t->request(GET => $bad, headers => \@h);
    my $who = $sub // 'no subuser';
    is($r->{status}, 404, "built-in host, $who: refused route");
    is($r->{headers}{'x-upstream-host'}[0], $host,
       "built-in host, $who: \$sendgrid_upstream_host on a refused request");
    is($r->{headers}{'x-region'}[0], $region, "built-in host, $who: region");

    # outside a gateway location nothing is resolved: the variables are
    # empty, whatever the request
    $r = $t->request(GET => '/hosts', headers => \@h);
    is($r->{body}, '  ', "built-in host, $who: variables empty outside the "
                         . 'gateway');
}
$t->nothing_upstream('built-in hosts');

$t->secret('SG.client-own-key');

$t->done_testing;
