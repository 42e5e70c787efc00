# Metrics through two workers: a known mix of requests (every operation,
# both regions, the gateway's refusals for every reason, SendGrid's 2xx,
# 4xx and 5xx, 413, 502, report_only) gives exact counts in every
# series; clients in parallel processes, served by both workers, are
# counted exactly; the counts go on across a reload; the output passes
# promtool; the endpoint answers only the clients allow lets in.

use strict;
use warnings;

use Test::More;
use SGTest qw(create_body);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);

my $t = SGTest->new(workers => 2);

$t->key_file('global.key', "SG.metrics-global.0123456789abcdef\n");
$t->key_file('eu.key', "SG.metrics-eu.fedcba9876543210\n");

my $C = '/v3/marketing/integrations';
my $dead = SGTest::free_port();

my $keys = <<'CONF';
    sendgrid_api_key_file %%DIR%%/global.key;
    sendgrid_api_key_file %%DIR%%/eu.key eu;
    sendgrid_subuser_region ~^eu- eu;
    sendgrid_subuser_region ~^(a+)+$ eu;
CONF

# the gateway servers, told apart by Host
my $conf = <<"CONF"
    sendgrid_metrics_zone sendgrid_metrics 1m;
    log_format pids '\$pid';
    upstream sendgrid_dead { server 127.0.0.1:$dead; }

    server {
        listen 127.0.0.1:%%PORT%% reuseport;
        server_name localhost;
        access_log %%DIR%%/logs/pids.log pids;

        location $C {
            sendgrid_integrations on;
$keys
            proxy_pass http://\$sendgrid_upstream_host;
        }

        location = /metrics {
            sendgrid_metrics sendgrid_metrics;
            allow 127.0.0.1;
            deny all;
        }
    }

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name wrong.test;

        location $C {
            sendgrid_integrations on;
$keys
            proxy_pass http://sendgrid_eu;
        }
    }
CONF
    . SGTest::gateway_server('small.test', 'client_max_body_size 16;',
                             location => $keys)
    . SGTest::gateway_server('nokey.test', '')
    . SGTest::gateway_server('moved.test', '',
                             location => "$keys rewrite ^ $C/other break;")
    . SGTest::gateway_server('dead.test',
                             'sendgrid_upstream_host global sendgrid_dead;',
                             location => $keys)
    . SGTest::gateway_server('report.test', '', mode => 'report_only',
                             location => $keys)
    . SGTest::gateway_server('off.test', 'sendgrid_metrics_count off;',
                             location => $keys);

$t->start($conf);

my $json = ['Content-Type' => 'application/json'];
my $valid = create_body(write_key => 'a123456');
my $many_names = '{' . join(',', map { "\"n$_\":1" } 1 .. 1025) . '}';
my $upstream_error = '{"errors":[{"field":"label","message":"bad label"}]}';

# Each request of the mix: what it is, what the client must get, and what
# it counts: operation, region, source, refusal reason, schema rules,
# validated body bytes, and whether it went to SendGrid (timed).
my @mix = (
    # SendGrid's answers
    { name => 'list', req => [GET => $C], status => 200,
      op => 'list', source => 'upstream', timed => 1 },
    { name => 'list, EU subuser',
      req => [GET => $C, headers => ['on-behalf-of' => 'eu-team']],
      status => 200, op => 'list', region => 'eu', source => 'upstream',
      timed => 1 },
    { name => 'create', req => [POST => $C, headers => $json, body => $valid],
      status => 201, op => 'create', source => 'upstream', timed => 1,
      bytes => length $valid },
    { name => 'delete', req => [DELETE => "$C?ids=a,b"], status => 204,
      op => 'delete', source => 'upstream', timed => 1 },
    { name => 'get', req => [GET => "$C/abc"], status => 200,
      op => 'get', source => 'upstream', timed => 1 },
    { name => 'update',
      req => [PATCH => "$C/abc", headers => $json, body => '{"label":"x"}'],
      status => 200, op => 'update', source => 'upstream', timed => 1,
      bytes => 13 },
    { name => 'upstream 400',
      upstream => [status => 400, body => $upstream_error,
                   headers => [['Content-Type', 'application/json']]],
      req => [POST => $C, headers => $json, body => $valid], status => 400,
      op => 'create', source => 'upstream', timed => 1,
      bytes => length $valid },
    { name => 'upstream 503', upstream => [status => 503, body => 'busy'],
      req => [GET => "$C/abc"], status => 503,
      op => 'get', source => 'upstream', timed => 1 },
    { name => 'upstream slow', upstream => [status => 200, delay_ms => 600,
                                            body => '{}'],
      req => [GET => "$C/slow"], status => 200,
      op => 'get', source => 'upstream', timed => 1, slow => 1 },
    { name => 'upstream unreachable', host => 'dead.test',
      req => [GET => $C], status => 502,
      op => 'list', source => 'gateway', timed => 1 },

    # the gateway's refusals, one for each reason
    { name => 'route', req => [GET => "$C/"], status => 404,
      op => 'none', refusal => 'route' },
    { name => 'method', req => [PUT => $C], status => 405,
      op => 'none', refusal => 'method' },
    { name => 'query', req => [GET => "$C?x=1"], status => 400,
      op => 'list', refusal => 'query' },
    { name => 'uri changed', host => 'moved.test', req => [GET => $C],
      status => 404, op => 'list', refusal => 'uri_changed' },
    { name => 'method override',
      req => [GET => $C, headers => ['X-HTTP-Method-Override' => 'DELETE']],
      status => 400, op => 'list', refusal => 'method_override' },
    { name => 'subuser twice',
      req => [GET => $C, headers => ['on-behalf-of' => 'x',
                                     'on-behalf-of' => 'y']],
      status => 400, op => 'list', refusal => 'subuser_repeated' },
    { name => 'content type',
      req => [POST => $C, headers => ['Content-Type' => 'text/plain'],
              body => $valid],
      status => 415, op => 'create', refusal => 'content_type' },
    { name => 'body on GET', req => [GET => "$C/abc", body => 'x'],
      status => 400, op => 'get', refusal => 'body_not_allowed' },
    { name => 'empty body', req => [POST => $C, headers => $json, body => ''],
      status => 400, op => 'create', refusal => 'body_empty' },
    { name => 'not JSON',
      req => [POST => $C, headers => $json, body => '{"a":'],
      status => 400, op => 'create', refusal => 'body_syntax', bytes => 5 },
    { name => 'duplicate member',
      req => [PATCH => "$C/abc", headers => $json,
              body => '{"label":"a","label":"b"}'],
      status => 400, op => 'update', refusal => 'body_duplicate',
      bytes => 25 },
    { name => 'schema: create',
      req => [POST => $C, headers => $json, body => '{}'], status => 400,
      op => 'create', refusal => 'body_schema', bytes => 2,
      rules => [qw(destination_required filters_required
                   properties_required)] },
    { name => 'schema: update',
      req => [PATCH => "$C/abc", headers => $json,
              body => '{"filters":[],"label":1}'],
      status => 400, op => 'update', refusal => 'body_schema', bytes => 24,
      rules => [qw(filters_type label_type)] },
    { name => 'schema: a name in another letter case',
      req => [PATCH => "$C/abc", headers => $json, body => '{"Label":"x"}'],
      status => 400, op => 'update', refusal => 'body_schema', bytes => 13,
      rules => [qw(name_case)] },
    { name => 'past the limit on member names',
      req => [PATCH => "$C/abc", headers => $json, body => $many_names],
      status => 400, op => 'update', refusal => 'body_limit',
      bytes => length $many_names },
    { name => 'too large', host => 'small.test',
      req => [POST => $C, headers => $json, body => $valid], status => 413,
      op => 'create', refusal => 'body_too_large' },
    { name => 'too large, chunked', host => 'small.test',
      req => [POST => $C, headers => $json, body => $valid, http => '1.1',
              chunked => 1, chunk_size => length $valid],
      status => 413, op => 'create', refusal => 'body_too_large' },
    { name => 'no key', host => 'nokey.test', req => [GET => $C],
      status => 500, op => 'list', refusal => 'key_missing' },
    { name => 'subuser not a header value',
      req => [GET => "$C/abc", headers => ['on-behalf-of' => "caf\xc3\xa9"]],
      status => 400, op => 'get', refusal => 'subuser_invalid' },
    { name => 'key not sent', host => 'wrong.test', req => [GET => $C],
      status => 500, op => 'list', refusal => 'key_not_sent' },
    { name => 'internal',
      req => [GET => $C, headers => ['on-behalf-of' => ('a' x 40) . 'b']],
      status => 500, op => 'list', refusal => 'internal' },

    # report_only lets a bad Content-Type and a bad body through
    { name => 'report_only', host => 'report.test',
      req => [POST => $C, headers => ['Content-Type' => 'text/plain'],
              body => '{}'],
      status => 201, op => 'create', source => 'upstream', timed => 1,
      bytes => 2, reported => [qw(content_type body_schema)],
      rules => [qw(destination_required filters_required
                   properties_required)] },

    # not counted: a location with sendgrid_metrics_count off
    { name => 'not counted', host => 'off.test', req => [GET => $C],
      status => 200, uncounted => 1 },
);

my @reasons = qw(route method query uri_changed method_override
                 subuser_repeated content_type body_not_allowed body_empty
                 body_syntax body_duplicate body_limit body_schema
                 body_too_large key_missing subuser_invalid key_not_sent
                 internal);
my @reportable = qw(content_type body_empty body_syntax body_duplicate
                    body_limit body_schema);
my @rules = qw(object destination_required destination_value
               filters_required filters_type email_events_required
               email_events_type email_event_value properties_required
               properties_type write_key_required write_key_type
               write_key_length destination_region_required
               destination_region_value label_type unknown_member
               name_case);
my @buckets = qw(0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf);

my $P = 'sendgrid_integrations_';

sub run_mix {
    my ($round) = @_;

    for my $m (@mix) {
        $t->upstream_response('global', @{$m->{upstream}}) if $m->{upstream};

        my ($method, $target, %opt) = @{$m->{req}};
        my @h = @{$opt{headers} // []};
        push @h, Host => $m->{host} if $m->{host};

        my $r = $t->request($method, $target, %opt, headers => \@h);
        is($r->{status}, $m->{status}, "$round: $m->{name}: $m->{status}");

        $t->upstream_response('global') if $m->{upstream};
    }

    # what reached the mocks is not what is tested here
    $t->upstream($_) for qw(global eu);
}

# the series the mix counts, n times, and the concurrent requests
sub expected {
    my ($n, $concurrent) = @_;
    my (%requests, %e);

    for my $m (grep { !$_->{uncounted} } @mix) {
        my $code = $m->{status};
        my $labels = sprintf 'operation="%s",region="%s",source="%s",'
                             . 'class="%dxx",code="%d"',
                             $m->{op}, $m->{region} // 'global',
                             $m->{source} // 'gateway', $code / 100, $code;
        $requests{"${P}requests_total{$labels}"} += $n;

        $e{"${P}refusals_total{reason=\"$m->{refusal}\"}"} += $n
            if $m->{refusal};
        $e{"${P}reported_total{reason=\"$_\"}"} += $n
            for @{$m->{reported} // []};
        $e{"${P}schema_failures_total{rule=\"$_\"}"} += $n
            for @{$m->{rules} // []};
        $e{"${P}validated_body_bytes_total{operation=\"$m->{op}\"}"}
            += $n * $m->{bytes} if $m->{bytes};

        if ($m->{timed}) {
            my $s = sprintf '%supstream_response_time_seconds_count'
                            . '{operation="%s",region="%s"}',
                            $P, $m->{op}, $m->{region} // 'global';
            $e{$s} += $n;
        }
    }

    $requests{"${P}requests_total{$_->[0]}"} += $_->[1] for @$concurrent;

    $e{"${P}refusals_total{reason=\"$_\"}"} //= 0 for @reasons;
    $e{"${P}reported_total{reason=\"$_\"}"} //= 0 for @reportable;
    $e{"${P}schema_failures_total{rule=\"$_\"}"} //= 0 for @rules;
    $e{"${P}validated_body_bytes_total{operation=\"$_\"}"} //= 0
        for qw(create update);

    for my $op (qw(list create delete get update)) {
        for my $region (qw(global eu)) {
            $e{sprintf '%supstream_response_time_seconds_count'
                       . '{operation="%s",region="%s"}', $P, $op, $region}
                //= 0;
        }
    }

    # the concurrent list requests went to SendGrid too
    for (grep { $_->[0] =~ /^operation="list",region="global",
                            source="upstream"/x } @$concurrent)
    {
        $e{"${P}upstream_response_time_seconds_count"
           . '{operation="list",region="global"}'} += $_->[1];
    }

    return (\%requests, \%e);
}

# A scrape once every counted request has been logged (the log phase
# comes after the answer, and the other worker may scrape first): the
# samples, once requests_total adds up to total, or after 20 seconds.
sub settled {
    my ($total) = @_;
    my ($r, $s);

    for (1 .. 200) {
        ($r, $s) = $t->metrics('/metrics');
        my $sum = 0;
        $sum += $s->{$_} for grep { /^${P}requests_total\{/ } keys %$s;
        last if $sum >= $total;
        sleep 0.1;
    }

    return ($r, $s);
}

# every sample of requests_total, and the expected ones of the rest
sub check_counts {
    my ($when, $s, $requests, $e) = @_;

    my %got = map { $_ => $s->{$_} } grep { /^${P}requests_total\{/ } keys %$s;
    is_deeply(\%got, $requests, "$when: requests_total, every series")
        or diag(differences(\%got, $requests));

    my %rest = map { $_ => $s->{$_} } keys %$e;
    is_deeply(\%rest, $e, "$when: refusals, reports, schema rules, body "
                          . 'bytes, upstream times')
        or diag(differences(\%rest, $e));

    # every histogram adds up, and its buckets only grow
    my @bad;
    for my $op (qw(list create delete get update)) {
        for my $region (qw(global eu)) {
            my $l = "operation=\"$op\",region=\"$region\"";
            my @b = map { $s->{"${P}upstream_response_time_seconds_bucket"
                               . "{$l,le=\"$_\"}"} // -1 } @buckets;
            push @bad, "$l: @b"
                if grep({ $b[$_] < $b[$_ - 1] } 1 .. $#b)
                   || $b[-1] != $s->{"${P}upstream_response_time_seconds_count"
                                     . "{$l}"};
        }
    }
    is_deeply(\@bad, [], "$when: histogram buckets cumulative, +Inf the count");
}

sub differences {
    my ($got, $want) = @_;
    my %all = (%$got, %$want);
    return join "\n", map { "$_: got " . ($got->{$_} // 'none') . ', want '
                             . ($want->{$_} // 'none') }
                       grep { ($got->{$_} // -1) != ($want->{$_} // -1) }
                       sort keys %all;
}

sub total { my $n = 0; $n += $_ for values %{$_[0]}; return $n }

sub key_loaded {
    my ($s, $name) = @_;
    return $s->{"${P}key_file_loaded_timestamp_seconds{path=\""
                . $t->dir . "/$name\"}"};
}


# nothing counted yet

my ($r, $s) = $t->metrics('/metrics');
is($r->{status}, 200, 'the endpoint answers');
is_deeply($r->{headers}{'content-type'},
          ['text/plain; version=0.0.4; charset=utf-8'],
          'the endpoint: the text format\'s Content-Type');
is_deeply([ grep { /^${P}requests_total/ } keys %$s ], [],
          'before any request: no requests_total series');
my @zero = grep { $s->{$_} != 0 && !/key_file_loaded/ } keys %$s;
is_deeply(\@zero, [], 'before any request: every other counter is 0');

my $started = time;
my ($global_loaded, $eu_loaded) = (key_loaded($s, 'global.key'),
                                   key_loaded($s, 'eu.key'));
ok($global_loaded && $global_loaded <= $started + 1
   && $global_loaded > $started - 120, 'global.key: when it was read');
ok($eu_loaded && $eu_loaded <= $started + 1, 'eu.key: when it was read');


# the mix

run_mix('first');
my ($requests, $e) = expected(1, []);
($r, $s) = settled(total($requests));
check_counts('after the mix', $s, $requests, $e);

my $slow = $s->{"${P}upstream_response_time_seconds_bucket"
                . '{operation="get",region="global",le="0.5"}'};
my $get_count = $s->{"${P}upstream_response_time_seconds_count"
                     . '{operation="get",region="global"}'};
ok($slow < $get_count, 'the slow answer is above the 0.5 s bucket');
ok($s->{"${P}upstream_response_time_seconds_sum"
        . '{operation="get",region="global"}'} >= 0.6,
   'the slow answer is in the sum');


# clients in parallel, one process each, through both workers

my @children;
for my $c (1 .. 4) {
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        my $ok = eval {
            for my $i (1 .. 50) {
                my $x = $t->request(GET => "$C/bad%20id");
                die "404 expected: $x->{status}\n" unless $x->{status} == 404;
                next if $i % 10;
                $x = $t->request(GET => $C);
                die "200 expected: $x->{status}\n" unless $x->{status} == 200;
            }
            1;
        };
        print STDERR $@ unless $ok;
        POSIX::_exit($ok ? 0 : 1);
    }
    push @children, $pid;
}

my $failed = 0;
for (@children) {
    waitpid($_, 0);
    $failed++ if $?;
}
is($failed, 0, 'four clients in parallel: every answer as expected');
$t->upstream($_) for qw(global eu);

my $concurrent = [
    [ 'operation="none",region="global",source="gateway",class="4xx",'
      . 'code="404"', 200 ],
    [ 'operation="list",region="global",source="upstream",class="2xx",'
      . 'code="200"', 20 ],
];

($requests, $e) = expected(1, $concurrent);
$e->{"${P}refusals_total{reason=\"route\"}"} += 200;
($r, $s) = settled(total($requests));
check_counts('after the parallel clients', $s, $requests, $e);

my %pids = map { $_ => 1 } grep { /^\d+$/ }
           split /\n/, SGTest::slurp($t->dir . '/logs/pids.log');
is(scalar keys %pids, 2, 'both workers served requests');


# a reload keeps the counts; the key files are read again

$t->key_file('global.key', "SG.metrics-global-rotated.0123456789\n");
my $before_reload = time;
sleep 1.1;

ok($t->reload(wait => 1), 'reloaded: the old workers are gone');

($r, $s) = settled(total($requests));
check_counts('right after the reload', $s, $requests, $e);

my $reloaded = key_loaded($s, 'global.key');
ok($reloaded > $global_loaded && $reloaded >= int($before_reload),
   "global.key: read again at the reload ($global_loaded, then $reloaded)");

run_mix('after the reload');
($requests, $e) = expected(2, $concurrent);
$e->{"${P}refusals_total{reason=\"route\"}"} += 200;
($r, $s) = settled(total($requests));
check_counts('after the mix again', $s, $requests, $e);


# promtool accepts the text

SKIP: {
    skip 'promtool is not installed (Debian package prometheus)', 2
        unless -x '/usr/bin/promtool';

    my $file = $t->write_file('metrics.prom', $r->{body});
    my $out = `/usr/bin/promtool check metrics < '$file' 2>&1`;
    is($?, 0, 'promtool check metrics: passes');
    is($out, '', 'promtool check metrics: no finding') or diag($out);
}


# the endpoint: GET and HEAD only; allow and deny as everywhere

$r = $t->request(POST => '/metrics', body => 'x');
is($r->{status}, 405, 'the endpoint refuses POST');

$r = $t->request(HEAD => '/metrics');
is($r->{status}, 200, 'the endpoint answers HEAD');

{
    my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.2',
                                     PeerAddr => '127.0.0.1:' . $t->port,
                                     Proto => 'tcp')
        or die "connect from 127.0.0.2: $!";
    SGTest::syswrite_all($sock, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n"
                                . "\r\n");
    my $raw = SGTest::read_to_close($sock);
    close $sock;
    $t->seen_response($raw);

    like($raw, qr{^HTTP/1\.1 403 }, 'a client that deny refuses: 403');
    unlike($raw, qr/sendgrid_integrations_/, 'a refused client: no metrics');
}

# the scrapes and the other requests left the counts as they were
($r, $s) = $t->metrics('/metrics');
check_counts('at the end', $s, $requests, $e);

$t->done_testing;
