# Content-Type rules, the order of the checks around the body, a refusal
# of sendgrid_strict logged, and sendgrid_integrations report_only: body
# rules relaxed and logged once each, routes, headers and keys untouched.
# The body cases themselves are in t/lib/SGBodyCases.pm (t/60-body.t).

use strict;
use warnings;

use Test::More;
use SGTest qw(json_object create_body json_escape body_error
              invalid_json_at);

my $t = SGTest->new;
my $KEY = 'SG.body-modes-global.0123456789abcdef';
$t->key_file('global.key', "$KEY\n");

my $KEYED = 'sendgrid_api_key_file %%DIR%%/global.key;';
my $conf = '';
for my $s ([ 'localhost', 'on', $KEYED ],
           [ 'strict.test', 'on', "$KEYED sendgrid_strict on;" ],
           [ 'nokey.test', 'on', '' ],
           [ 'report.test', 'report_only', $KEYED ],
           [ 'reportstrict.test', 'report_only',
             "$KEYED sendgrid_strict on;" ],
           [ 'reportnokey.test', 'report_only', '' ])
{
    $conf .= SGTest::gateway_server($s->[0], $s->[2], mode => $s->[1]);
}

$t->start($conf);

my $MOCK_BODY = '{"mock":"upstream"}';
$t->upstream_response('global', status => 200, body => $MOCK_BODY,
                      headers => [['Content-Type', 'application/json']]);

my $C = '/v3/marketing/integrations';
my $ITEM = "$C/5a1234";
my $JSON = 'application/json';

my $WK = 'wk-modes-Rt5Vb9';
my $SHORT_KEY = 'Zq3%~';
my $CLIENT_KEY = 'SG.client-own-key-modes';
$t->secret($WK, $SHORT_KEY, $CLIENT_KEY);

my $NOT_FOUND = '{"errors":[{"message":"resource not found","field":null}]}';
my $NOT_ALLOWED = '{"errors":[{"message":"method not allowed","field":null}]}';
my $OVERRIDE = '{"errors":[{"message":"method override headers are not '
             . 'allowed","field":null}]}';
my $HAS_BODY = '{"errors":[{"message":"this request must not have a body",'
             . '"field":"request"}]}';
my $NO_KEY = '{"errors":[{"message":"no API key is configured for the '
           . 'request\'s region","field":null}]}';
my $CT_MESSAGE = 'Content-Type must be application/json';

sub unknown_param {
    return '{"errors":[{"message":"unknown query parameter","parameter":"'
           . $_[0] . '"}]}';
}


# --- helpers ---------------------------------------------------------------

# a create body with the file's write_key (undef removes a member)
sub post { create_body(write_key => $WK, @_) }

# the longest message in a log line, in escaped bytes (sg_errlog.h)
my $MESSAGE_MAX = 256;

# the length of a message as a log line holds it: escaped, in UTF-8
sub escaped_length {
    my $e = json_escape($_[0]);
    utf8::encode($e);
    return length $e;
}

my $cases = 0;

# One exchange.  c: name, method, target, host, headers (after Host),
# content_type (undef: none; default application/json), body, and what
# is expected: status, response (exact body; undef when forwarded), allow,
# forwarded, log => [ [status, message, report_only, field], ... ] (field
# "request" unless given, undef for null).
sub check {
    my ($c) = @_;
    my $name = $c->{name};
    my $method = $c->{method} // 'POST';
    my $target = $c->{target} // ($method eq 'PATCH' ? $ITEM : $C);

    my @h;
    push @h, Host => $c->{host} if $c->{host};
    my $ct = exists $c->{content_type} ? $c->{content_type} : $JSON;
    push @h, 'Content-Type' => $ct if defined $ct;
    push @h, @{$c->{headers} // []};

    $cases++;

    my $logged = $t->error_log_size;
    my $r = $t->request($method, $target, headers => \@h, body => $c->{body});
    my @lines = $t->sendgrid_log_lines(since => $logged);

    if ($c->{forwarded}) {
        is($r->{status}, $c->{status}, "$name: $c->{status}");
        is($r->{body}, $MOCK_BODY, "$name: the upstream's answer");
        my $u = $t->forwarded_once('global', $name);
        ok($u->{body} eq ($c->{body} // ''), "$name: body byte for byte");
        is_deeply([ SGTest::header_values($u, 'Authorization') ],
                  [ "Bearer $KEY" ], "$name: the gateway's key only");
    } else {
        $t->is_refused($r, $c->{status}, $c->{response}, $name);
    }

    is($r->{headers}{allow}[0], $c->{allow}, "$name: Allow")
        if $c->{allow};

    my @want = @{$c->{log} // []};
    is(scalar @lines, scalar @want, "$name: " . scalar(@want)
                                    . ' line(s) logged')
        or diag(explain(\@lines));

    for my $i (0 .. $#want) {
        my ($status, $message, $report, @field) = @{$want[$i]};
        my $field = @field ? $field[0] : 'request';
        my $l = $lines[$i] or last;
        my $o = $l->{obj};

        # the line's JSON is read as characters
        utf8::decode($message);

        # a long message is logged cut, with the line marked truncated
        if (escaped_length($message) > $MESSAGE_MAX) {
            my $logged = $o->{errors}[0]{message} // '';
            my $cut = $logged =~ s/\x{2026}\z//;
            ok($cut && length $logged >= 80
               && escaped_length($logged) + 3 <= $MESSAGE_MAX
               && $logged eq substr($message, 0, length $logged)
               && $o->{truncated}, "$name: line $i, cut")
                or diag(explain($l));
            $message = $logged . "\x{2026}";
        }
        is_deeply([ $o->{source}, $o->{status}, $o->{errors},
                    $o->{report_only} ? 1 : 0, exists $o->{report_only} ],
                  [ 'gateway', $status,
                    [ { field => $field, message => $message } ],
                    $report ? 1 : 0, $report ? 1 : '' ],
                  "$name: line $i");
    }
}

# a request refused with a body error, on a server that enforces
sub refused {
    my ($c, $message) = @_;
    check({ %$c, status => 400, response => body_error($message),
            log => [ [ 400, $message ] ] });
}

sub passes {
    my ($c) = @_;
    check({ %$c, status => 200, forwarded => 1 });
}


# --- Content-Type ----------------------------------------------------------

my $VALID = post();
my $INVALID = post(destination => '"segment"');

passes({ name => "Content-Type $_", content_type => $_, body => $VALID })
    for ('application/json', 'application/json; charset=utf-8',
         'APPLICATION/JSON;charset="UTF-8"', 'application/json;charset=utf-8',
         'Application/Json ; Charset=Utf-8', 'application/json; charset=UTF-8');

for my $ct (undef, '', 'text/plain', 'text/json', 'application/jsonp',
            'application/json-seq', 'application/problem+json',
            'application/x-www-form-urlencoded',
            'multipart/form-data; boundary=x', 'application/json, text/plain',
            'application/json; charset=latin1',
            'application/json; charset=iso-8859-1',
            'application/json; charset=utf-16',
            'application/json; charset="latin1"')
{
    my $what = defined $ct ? "Content-Type '$ct'" : 'no Content-Type';
    check({ name => $what, content_type => $ct, body => $VALID,
            status => 415, response => body_error($CT_MESSAGE),
            log => [ [ 415, $CT_MESSAGE ] ] });
}

check({ name => 'two Content-Type headers, both JSON', body => $VALID,
        headers => [ 'Content-Type' => $JSON ],
        status => 415, response => body_error($CT_MESSAGE),
        log => [ [ 415, $CT_MESSAGE ] ] });

check({ name => 'two Content-Type headers, JSON and text', body => $VALID,
        headers => [ 'Content-Type' => 'text/plain' ],
        status => 415, response => body_error($CT_MESSAGE),
        log => [ [ 415, $CT_MESSAGE ] ] });

check({ name => 'PATCH with text/plain', method => 'PATCH',
        content_type => 'text/plain', body => '{}',
        status => 415, response => body_error($CT_MESSAGE),
        log => [ [ 415, $CT_MESSAGE ] ] });

check({ name => 'PATCH without Content-Type', method => 'PATCH',
        content_type => undef, body => '{}',
        status => 415, response => body_error($CT_MESSAGE),
        log => [ [ 415, $CT_MESSAGE ] ] });

# not checked where there is no body
passes({ name => 'GET list with text/plain', method => 'GET',
         content_type => 'text/plain' });
passes({ name => 'GET item with a charset', method => 'GET', target => $ITEM,
         content_type => 'text/html; charset=latin1' });
passes({ name => 'DELETE with text/plain', method => 'DELETE',
         target => "$C?ids=a,b", content_type => 'text/plain' });
passes({ name => 'GET without Content-Type', method => 'GET',
         content_type => undef });


# --- order of the checks ---------------------------------------------------

check({ name => 'bad route beats bad body and Content-Type',
        target => "$C/", content_type => 'text/plain', body => '{"x":',
        status => 404, response => $NOT_FOUND,
        log => [ [ 404, 'resource not found', 0, undef ] ] });

check({ name => 'POST on an item beats a bad body', target => "$C/abc",
        body => '[', status => 405, response => $NOT_ALLOWED,
        allow => 'GET, PATCH', log => [ [ 405, 'method not allowed', 0, undef ] ] });

check({ name => 'PUT beats a bad body', method => 'PUT', body => '',
        status => 405, response => $NOT_ALLOWED,
        allow => 'GET, POST, DELETE',
        log => [ [ 405, 'method not allowed', 0, undef ] ] });

check({ name => 'bad query beats bad body and Content-Type',
        target => "$C?x=1", content_type => 'text/plain', body => '{"x":',
        status => 400, response => unknown_param('x'),
        log => [ [ 400, 'unknown query parameter', 0, 'x' ] ] });

check({ name => 'method override beats bad body and Content-Type',
        headers => [ 'X-HTTP-Method-Override' => 'PATCH' ],
        content_type => 'text/plain', body => '{"x":',
        status => 400, response => $OVERRIDE,
        log => [ [ 400, 'method override headers are not allowed', 0,
                   undef ] ] });

check({ name => 'bad Content-Type beats bad body',
        content_type => 'text/plain', body => '{"x":',
        status => 415, response => body_error($CT_MESSAGE),
        log => [ [ 415, $CT_MESSAGE ] ] });

check({ name => 'bad Content-Type beats an empty body',
        content_type => 'text/plain', body => '',
        status => 415, response => body_error($CT_MESSAGE),
        log => [ [ 415, $CT_MESSAGE ] ] });

refused({ name => 'bad body beats a missing key', host => 'nokey.test',
          body => $INVALID }, 'destination must be Segment');

refused({ name => 'empty body beats a missing key', host => 'nokey.test',
          body => '' }, 'request body is empty');

refused({ name => 'bad JSON beats a missing key', host => 'nokey.test',
          body => '{"a":1,}' }, invalid_json_at(8));

check({ name => 'bad Content-Type beats a missing key', host => 'nokey.test',
        content_type => 'text/plain', body => $VALID,
        status => 415, response => body_error($CT_MESSAGE),
        log => [ [ 415, $CT_MESSAGE ] ] });

check({ name => 'valid body, then the missing key', host => 'nokey.test',
        body => $VALID, status => 500, response => $NO_KEY,
        log => [ [ 500, "no API key is configured for the request's region",
                   0, undef ] ]
      });


# --- sendgrid_strict (the cases are in t/lib/SGBodyCases.pm) ---------------

refused({ name => 'strict: an unknown member, logged', host => 'strict.test',
          body => post(extra => [ id => '"x"' ]) }, 'id is not allowed');

passes({ name => 'not strict: the same',
         body => post(extra => [ id => '"x"' ]) });


# --- report_only: body rules relaxed and logged ----------------------------

my $DUP = post(extra => [ 'l\u0061bel' => '"a"', label => '"b"' ]);

# [ what, request fields, the failures logged: [status, message] ]
my @RELAXED = (
    [ 'a schema failure', { body => $INVALID },
      [ 400, 'destination must be Segment' ] ],
    [ 'a short write_key',
      { body => post(properties => qq({"write_key":"$SHORT_KEY",)
                                    . '"destination_region":"US"}') },
      [ 400, 'properties.write_key must be between 6 and 51 characters' ] ],
    [ 'every required member missing', { body => '{}' },
      [ 400, 'destination is required, filters is required, '
             . 'properties is required' ] ],
    [ 'bad JSON', { body => '{"a":1,}' }, [ 400, invalid_json_at(8) ] ],
    [ 'bad UTF-8', { body => qq({"label":"a\xffb"}) },
      [ 400, invalid_json_at(11) ] ],
    [ 'a lone surrogate', { body => '{"label":"\ud800"}' },
      [ 400, invalid_json_at(17) ] ],
    [ '10000 levels of nesting',
      { body => '{"x":' . ('[' x 10000) . (']' x 10000) . '}' },
      [ 400, invalid_json_at(5 + 2048) ] ],
    [ 'a duplicate', { body => $DUP },
      [ 400, 'request body has duplicate member "label" at byte '
             . (rindex($DUP, '"label"') + 7) ] ],
    [ 'a top-level array', { body => '[]' },
      [ 400, 'request body must be a JSON object' ] ],
    [ 'more member names than the limit',
      { body => '{' . join(',', map { qq("n$_":0) } 0 .. 1100) . '}' },
      [ 400, 'request body exceeds the limit of 1024 member names open at '
             . 'once at byte ' . (length('{' . join(',', map { qq("n$_":0) }
                                                     0 .. 1023)) + 8) ] ],
    [ 'a known name in another letter case',
      { body => post(extra => [ DESTINATION => '"Other"' ]) },
      [ 400, 'DESTINATION differs from destination only in letter case' ] ],
    [ 'write_key in another letter case',
      { body => post(properties => qq({"write_key":"$WK",)
                                   . qq("Write_\\u212aey":"$SHORT_KEY",)
                                   . '"destination_region":"US"}') },
      [ 400, "properties.Write_\xe2\x84\xaaey differs from "
             . 'properties.write_key only in letter case' ] ],
    [ 'an empty body', { body => '' }, [ 400, 'request body is empty' ] ],
    [ 'no body at all', { body => undef }, [ 400, 'request body is empty' ] ],
    [ 'no Content-Type', { body => $VALID, content_type => undef },
      [ 415, $CT_MESSAGE ] ],
    [ 'text/plain', { body => $VALID, content_type => 'text/plain' },
      [ 415, $CT_MESSAGE ] ],
    [ 'charset=latin1',
      { body => $VALID, content_type => 'application/json; charset=latin1' },
      [ 415, $CT_MESSAGE ] ],
    [ 'two Content-Type headers',
      { body => $VALID, headers => [ 'Content-Type' => $JSON ] },
      [ 415, $CT_MESSAGE ] ],
    [ 'text/plain and a bad body',
      { body => '{"x":', content_type => 'text/plain' },
      [ 415, $CT_MESSAGE ], [ 400, invalid_json_at(5) ] ],
    [ 'no Content-Type and an empty body', { body => '', content_type => undef },
      [ 415, $CT_MESSAGE ], [ 400, 'request body is empty' ] ],
    [ 'PATCH with a bad type', { method => 'PATCH', body => '{"label":1}' },
      [ 400, 'label must be a string' ] ],
    [ 'PATCH of text', { method => 'PATCH', body => 'label=x',
                          content_type => 'text/plain' },
      [ 415, $CT_MESSAGE ], [ 400, invalid_json_at(5) ] ],
);

for my $rl (@RELAXED) {
    my ($what, $req, @failures) = @$rl;
    check({ name => "report_only: $what", host => 'report.test', %$req,
            status => 200, forwarded => 1,
            log => [ map { [ @$_, 1 ] } @failures ] });
}

check({ name => 'report_only: a valid body', host => 'report.test',
        body => $VALID, status => 200, forwarded => 1, log => [] });

check({ name => 'report_only: a client Authorization is still replaced',
        host => 'report.test', body => $INVALID,
        headers => [ authorization => "Bearer $CLIENT_KEY" ],
        status => 200, forwarded => 1,
        log => [ [ 400, 'destination must be Segment', 1 ] ] });

check({ name => 'report_only and strict: unknown members',
        host => 'reportstrict.test',
        body => post(extra => [ x => 1 ],
                     filters => '{"email_events":["open"],"y":2}'),
        status => 200, forwarded => 1,
        log => [ [ 400, 'filters.y is not allowed, x is not allowed', 1 ] ] });

# member names that are secrets are redacted in the lines
{
    my $SG_NAME = 'SG.unknown-member-token';
    $t->secret($SG_NAME);

    my $props = qq({"write_key":"$WK","$WK":1,"destination_region":"US"});
    check({ name => 'report_only and strict: a member named as the write_key',
            host => 'reportstrict.test', body => post(properties => $props),
            status => 200, forwarded => 1,
            log => [ [ 400, 'properties.[REDACTED] is not allowed', 1 ] ] });

    check({ name => 'report_only and strict: that name before the write_key',
            host => 'reportstrict.test',
            body => json_object($WK => 'true', destination => '"Segment"',
                                filters => '{"email_events":[]}',
                                properties => qq({"write_key":"$WK",)
                                              . '"destination_region":"EU"}'),
            status => 200, forwarded => 1,
            log => [ [ 400, '[REDACTED] is not allowed', 1 ] ] });

    check({ name => 'report_only and strict: a member named as an API key',
            host => 'reportstrict.test',
            body => post(extra => [ $SG_NAME => 1 ]),
            status => 200, forwarded => 1,
            log => [ [ 400, '[REDACTED] is not allowed', 1 ] ] });

    my $b = post(properties => qq({"write_key":"$WK","$WK":1,"$WK":2,)
                               . '"destination_region":"US"}');
    check({ name => 'report_only: a duplicate named as the write_key',
            host => 'report.test', body => $b, status => 200, forwarded => 1,
            log => [ [ 400, 'request body has duplicate member "[REDACTED]" '
                            . 'at byte ' . (rindex($b, qq("$WK")) + 2
                                            + length $WK), 1 ] ] });
}

# never relaxed: the allowlist, the query, the method override, bodies on
# GET and DELETE, the key
check({ name => 'report_only: bad route', host => 'report.test',
        target => "$C/", body => $INVALID, status => 404,
        response => $NOT_FOUND, log => [ [ 404, 'resource not found', 0, undef ] ] });

check({ name => 'report_only: POST on an item', host => 'report.test',
        target => "$C/abc", body => $VALID, status => 405,
        response => $NOT_ALLOWED, allow => 'GET, PATCH',
        log => [ [ 405, 'method not allowed', 0, undef ] ] });

check({ name => 'report_only: PUT', host => 'report.test', method => 'PUT',
        body => $VALID, status => 405, response => $NOT_ALLOWED,
        allow => 'GET, POST, DELETE',
        log => [ [ 405, 'method not allowed', 0, undef ] ] });

check({ name => 'report_only: unknown query parameter', host => 'report.test',
        target => "$C?on_behalf_of=x", body => $VALID, status => 400,
        response => unknown_param('on_behalf_of'),
        log => [ [ 400, 'unknown query parameter', 0, 'on_behalf_of' ] ] });

check({ name => 'report_only: method override', host => 'report.test',
        headers => [ 'X-HTTP-Method' => 'DELETE' ], body => $VALID,
        status => 400, response => $OVERRIDE,
        log => [ [ 400, 'method override headers are not allowed', 0,
                   undef ] ] });

check({ name => 'report_only: method override and a bad body',
        host => 'report.test', content_type => 'text/plain',
        headers => [ 'X-Method-Override' => 'GET' ], body => '{',
        status => 400, response => $OVERRIDE,
        log => [ [ 400, 'method override headers are not allowed', 0,
                   undef ] ] });

check({ name => 'report_only: GET with a body', host => 'report.test',
        method => 'GET', body => $VALID, status => 400,
        response => $HAS_BODY,
        log => [ [ 400, 'this request must not have a body' ] ] });

check({ name => 'report_only: DELETE with a body', host => 'report.test',
        method => 'DELETE', target => "$C?ids=a", body => '{}',
        status => 400, response => $HAS_BODY,
        log => [ [ 400, 'this request must not have a body' ] ] });

check({ name => 'report_only: a bad body, then the missing key',
        host => 'reportnokey.test', body => $INVALID,
        status => 500, response => $NO_KEY,
        log => [ [ 400, 'destination must be Segment', 1 ],
                 [ 500, "no API key is configured for the request's region",
                   0, undef ]
               ] });

check({ name => 'report_only: a valid body, then the missing key',
        host => 'reportnokey.test', body => $VALID,
        status => 500, response => $NO_KEY,
        log => [ [ 500, "no API key is configured for the request's region",
                   0, undef ]
               ] });

is(scalar $t->upstream('eu'), 0, 'the EU upstream saw nothing');

note("$cases cases");
cmp_ok($cases, '>=', 80, 'at least 80 cases');

$t->done_testing;
