# $sendgrid_error when no normalized line is written (sendgrid_error_log off,
# or a level above every error_log) equals the line a logging location writes
# for the same request, and the last of several errors is the one kept.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use SGTest;

my $t = SGTest->new;
$t->key_file('global.key', "SG.lazy-global.0123456789abcdef\n");

my $servers = '';
for my $s ([ 'loud', '' ], [ 'quiet', 'sendgrid_error_log off;' ],
           [ 'above', "sendgrid_error_log info;\n        error_log %%DIR%%/logs/above.log error;" ]) {
    my ($name, $extra) = @$s;
    for my $k ([ '', 'sendgrid_api_key_file %%DIR%%/global.key;' ], [ '-nokey', '' ]) {
        $servers .= <<"S";
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name $name$k->[0].test;
        $extra
        $k->[1]
        location /v3/marketing/integrations {
            sendgrid_integrations report_only;
            proxy_pass http://\$sendgrid_upstream_host;
        }
    }
S
    }
}

$t->start(<<"CONF" . $servers);
    log_format lazy escape=json '\$http_x_test_id [\$sendgrid_error]';
    access_log %%DIR%%/logs/lazy.log lazy;
CONF

my $seq = 0;
sub value {
    my ($id) = @_;
    for (1 .. 500) {
        for (split /\n/, SGTest::slurp($t->dir . '/logs/lazy.log')) {
            return JSON::PP->new->allow_nonref->decode(qq{"$1"}) if /^\Q$id\E \[(.*)\]$/;
        }
        sleep 0.01;
    }
    return undef;
}
sub lines { my ($f) = @_; grep { /sendgrid_integrations: \{/ } split /\n/, SGTest::slurp($t->dir . "/logs/$f") }

my $wk = 'wk_lazy_0123456789';
$t->secret($wk);
my $valid = qq({"destination":"Segment","filters":{"email_events":["open"]},"properties":{"write_key":"$wk","destination_region":"US"}});
my $bad = qq({"destination":"Segment","filters":{"email_events":["nope"]},"properties":{"write_key":"$wk","destination_region":"XX"}});

my @cases = (
    [ 'text/plain + invalid body, no key: 415, 400, then 500', '-nokey', POST => '/v3/marketing/integrations', 'text/plain', $bad, 3 ],
    [ 'text/plain + valid body: forwarded, the 415 kept', '', POST => '/v3/marketing/integrations', 'text/plain', $valid, 1 ],
    [ 'invalid body: reported, forwarded', '', POST => '/v3/marketing/integrations', 'application/json', $bad, 1 ],
    [ 'bad route: 404', '', GET => '/v3/marketing/integrations/', undef, undef, 1 ],
    [ 'ids: 400 parameter', '', DELETE => '/v3/marketing/integrations?ids=a,,b', undef, undef, 1 ],
    [ 'upstream 400', '', PATCH => '/v3/marketing/integrations/abc', 'application/json', qq({"properties":{"write_key":"$wk"}}), 1, 1 ],
);

for my $c (@cases) {
    my ($name, $suffix, $method, $target, $type, $body, $nlines, $up) = @$c;
    my %v;
    for my $s (qw(loud quiet above)) {
        my $before = () = lines('error.log');
        my $before_above = () = lines('above.log');
        $t->upstream_response('global', status => 400, headers => [ [ 'Content-Type', 'application/json' ] ],
            body => qq({"errors":[{"field":"label","message":"bad label $wk"}]})) if $up;
        my $id = sprintf 'lazy-%03d', ++$seq;
        my @h = ('X-Test-Id' => $id, Host => "$s$suffix.test");
        push @h, 'Content-Type' => $type if defined $type;
        my $r = $t->request($method, $target, headers => \@h, body => $body);
        $t->upstream_response('global') if $up;

        # the upstream's answers echo the write_key the client sent
        $t->forget_response if $t->upstream('global');
        $v{$s} = value($id);
        my @new = (lines('error.log'))[$before .. scalar(lines('error.log')) - 1];
        my @new_above = (lines('above.log'))[$before_above .. scalar(lines('above.log')) - 1];
        if ($s eq 'loud') {
            is(scalar @new, $nlines, "$name: $nlines line(s) logged");
            my ($last) = $new[-1] =~ /sendgrid_integrations: (\{.*?\})(?: while [a-z ]+)?(?:, client|$)/;
            is($v{loud}, $last, "$name: \$sendgrid_error is the last line logged");
        } else {
            is(scalar @new + scalar @new_above, 0, "$name: $s: nothing logged");
        }
        ok(defined $v{$s} && length $v{$s}, "$name: $s: \$sendgrid_error set");
        unlike($v{$s} // '', qr/\Q$wk\E|SG\.lazy/, "$name: $s: no secret");
    }
    is($v{quiet}, $v{loud}, "$name: off gives the same line");
    is($v{above}, $v{loud}, "$name: a level above error_log gives the same line");
}

$t->done_testing;
