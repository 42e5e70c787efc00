# The five operations reach the upstream byte for byte, with the gateway's
# key and none of the client's credentials.

use strict;
use warnings;

use Test::More;
use SGTest;

my $t = SGTest->new;
my $key = 'SG.global-test-key.0123456789abcdefABCDEF';
$t->key_file('global.key', "  $key \r\n\n");

$t->start(SGTest::gateway_server(undef, '', location => <<'CONF'));
    sendgrid_api_key_file %%DIR%%/global.key;
    add_header X-Operation "$sendgrid_operation" always;
    add_header X-Upstream "$sendgrid_upstream_host" always;
    add_header X-Region "$sendgrid_region" always;
CONF

my $post = '{"destination":"Segment","filters":{"email_events":["open","click"]},'
         . '"properties":{"write_key":"a123456","destination_region":"US"},'
         . '"label":"caf\u00e9 \u2603"}';
my $patch = "{ \"label\" : \"new label\" ,\n \"filters\":{\"email_events\":[]} }";

my @cases = (
    [ list   => 'GET', '/v3/marketing/integrations', undef, 200 ],
    [ create => 'POST', '/v3/marketing/integrations', $post, 201 ],
    [ delete => 'DELETE', '/v3/marketing/integrations?ids=5a1234', undef, 204 ],
    [ delete => 'DELETE', '/v3/marketing/integrations?ids=a,b%2Cc&ids=d-_9', undef, 204 ],
    [ get    => 'GET', '/v3/marketing/integrations/5a1234', undef, 200 ],
    [ update => 'PATCH', '/v3/marketing/integrations/' . ('Z' x 128), $patch, 200 ],
);

for my $case (@cases) {
    my ($op, $method, $target, $body, $status) = @$case;

    my @headers = ('User-Agent' => 'team-a/1.0', 'X-Trace' => "trace-$op",
                   'Authorization' => 'Bearer SG.client-own-key');
    push @headers, 'Content-Type' => 'application/json; charset=utf-8'
        if defined $body;

    my $r = $t->request($method, $target, headers => \@headers, body => $body);

    is($r->{status}, $status, "$op: client gets the upstream's status");
    is($r->{headers}{'x-operation'}[0], $op, "$op: \$sendgrid_operation");
    is($r->{headers}{'x-upstream'}[0], 'sendgrid_global',
       "$op: \$sendgrid_upstream_host");
    is($r->{headers}{'x-region'}[0], 'global', "$op: \$sendgrid_region");

    my $u = $t->forwarded_once('global', $op);

    is($u->{method}, $method, "$op: method");
    is($u->{target}, $target, "$op: target byte for byte");
    is($u->{body}, $body // '', "$op: body byte for byte");

    my @expected = $t->proxy_first($body);
    push @expected, ['User-Agent', 'team-a/1.0'], ['X-Trace', "trace-$op"];
    push @expected, ['Content-Type', 'application/json; charset=utf-8']
        if defined $body;
    push @expected, ['Authorization', "Bearer $key"];

    is_deeply($u->{headers}, \@expected, "$op: every header upstream");
}

# the upstream's answer reaches the client unchanged
my $r = $t->request(GET => '/v3/marketing/integrations/5a1234');
my $item = SGTest::json_body($r);
is($item->{integration_id}, '5a1234', 'upstream body relayed');
is($r->{headers}{'content-type'}[0], 'application/json', 'upstream type relayed');
$t->upstream('global');

# nothing reached the EU upstream
is(scalar $t->upstream('eu'), 0, 'EU upstream saw nothing');

$t->secret('SG.client-own-key');

$t->done_testing;
