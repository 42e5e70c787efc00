# The key goes to SendGrid and nowhere else, whatever else a location does:
# mirrors, error_page fallbacks (named and by URI), post_action,
# X-Accel-Redirect, SSI and addition subrequests, auth_request, slices,
# try_files, proxy_set_header, variables read early, headers with
# underscores, and (with Debian's lua module) a body or headers another
# module reads or writes.  A recording side service stands for every
# other upstream: it must never get key material; the SendGrid mocks get
# exactly the key the location's rules choose.  Every log file, at debug
# level too, is checked for the keys when the file ends.

use strict;
use warnings;

use Test::More;
use SGTest qw(create_body header_pairs header_values is_sendgrid_error);

my $t = SGTest->new;

my %key = (global => 'SG.compose-parent.AAAAaaaa1111',
           eu => 'SG.compose-eu.BBBBbbbb2222',
           acme => 'SG.compose-acme-own.CCCCcccc3333');
$t->key_file("$_.key", "$key{$_}\n") for sort keys %key;

my $lua = $t->load_lua;
my $down = SGTest::free_port();

$t->mock('shadow');

my $C = '/v3/marketing/integrations';
my $POST = create_body(write_key => 'wk-compose-1');
my $INVALID = '{"destination":"Segment","filters":{}}';

# Server-level text of the side service's locations.  (Their proxy_pass
# names the URI: nginx 1.22's proxy module copies an empty location URI
# from a NULL pointer, which the sanitizer build reports.)
my $SIDE = <<'CONF';
    location = /shadow { internal; proxy_pass http://sendgrid_shadow$request_uri; }
    location @fallback { proxy_pass http://sendgrid_shadow$uri; }
    location = /fallback { internal; proxy_pass http://sendgrid_shadow$uri; }
    location /accel/ { internal; proxy_pass http://sendgrid_shadow$uri; }
    location = /part { proxy_pass http://sendgrid_shadow$uri; }
    location = /auth {
        internal;
        proxy_pass http://sendgrid_shadow$uri;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }
CONF

my $conf = <<"CONF";
    sendgrid_api_key_file %%DIR%%/global.key;
    sendgrid_api_key_file %%DIR%%/eu.key eu;

    # every line of every module, at every level, is checked for the keys
    error_log %%DIR%%/logs/error.log info;
    error_log %%DIR%%/logs/debug.log debug;

    upstream sendgrid_down { server 127.0.0.1:$down; }

    log_format vars '\$http_x_test [\$http_authorization] [\$http_on_behalf_of] '
                    '[\$sendgrid_subuser] [\$sendgrid_region] '
                    '[\$sendgrid_upstream_host] [\$proxy_add_x_forwarded_for] '
                    '[\$sendgrid_error] [\$http_x_pushed_45]';
    access_log %%DIR%%/logs/vars.log vars;
CONF

$conf .= SGTest::gateway_server(@$_) for
    [ 'localhost', <<"PAGE", default_server => 1 ],
        location = /page {
            default_type text/html;
            ssi on;
            return 200 '<!--# include virtual="$C" -->';
        }
PAGE
    [ 'mirror.test', $SIDE,
      location => "mirror /shadow;\nmirror_request_body on;" ],
    [ 'fallback.test', "sendgrid_upstream_host global sendgrid_down;\n$SIDE",
      location => 'error_page 502 504 = @fallback;' ],
    [ 'fallback-uri.test',
      "sendgrid_upstream_host global sendgrid_down;\n$SIDE",
      location => 'error_page 502 /fallback;' ],
    [ 'postaction.test', $SIDE, location => 'post_action @fallback;' ],
    [ 'accel.test', $SIDE ],
    [ 'ssi.test', $SIDE,
      location => "ssi on;\nssi_types application/json;" ],
    [ 'addition.test', $SIDE,
      location => "add_before_body /part;\naddition_types application/json;" ],
    [ 'auth.test', $SIDE, location => 'auth_request /auth;' ],
    [ 'tryfiles.test', $SIDE,
      location => 'try_files /nothing-here @fallback;' ],
    [ 'early.test', <<'CONF', location => <<'LOC' ],
        sendgrid_subuser_region acme eu %%DIR%%/acme.key;
        set $early "[$sendgrid_subuser][$sendgrid_region][$sendgrid_upstream_host]";
        if ($sendgrid_region = "eu") {
            return 418;
        }
CONF
        sendgrid_subuser $http_x_trusted;
        add_header X-Early $early always;
LOC
    [ 'underscores.test', 'underscores_in_headers on;' ],
    [ 'proxyset.test', '', location => <<'LOC' ],
        proxy_set_header Authorization "Bearer from-the-configuration";
        proxy_set_header On_Behalf_Of configured;
        proxy_set_header X-SG-Elas-ACL configured;
        proxy_set_header X-Kept kept;
LOC
    ($lua ? (
    [ 'lua-body.test', '', location => <<'LOC' ],
        client_body_buffer_size 1k;
        access_by_lua_block { ngx.req.read_body() }
LOC
    [ 'lua-file.test', '', location => <<'LOC' ],
        client_body_in_file_only on;
        access_by_lua_block { ngx.req.read_body() }
LOC
    [ 'lua-headers.test', '', location => <<'LOC' ] ) : ());
        header_filter_by_lua_block {
            ngx.header["X-Lua-Saw"] =
                tostring(ngx.req.get_headers()["authorization"]) .. " "
                .. tostring(ngx.req.get_headers()["on-behalf-of"])
            for i = 1, 45 do
                ngx.req.set_header("X-Pushed-" .. i, tostring(i))
            end
        }
        body_filter_by_lua_block {
            ngx.req.set_header("X-Body-Filter", "pushed")
        }
        log_by_lua_block {
            local seen = {}
            for k, v in pairs(ngx.req.get_headers(200)) do
                seen[#seen + 1] = k .. "=" .. tostring(v)
            end
            ngx.log(ngx.WARN, "lua saw: ", table.concat(seen, " "))
        }
LOC

# a gateway location whose proxy_pass names the EU upstream for every
# request, one whose proxy_pass goes to an upstream no
# sendgrid_upstream_host names, and one that slices the answer: the
# slices after the first are subrequests that skip the precontent phase
$conf .= <<'CONF';
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name slice.test;
        location /v3/marketing/integrations {
            sendgrid_integrations on;
            slice 16;
            proxy_set_header Range $slice_range;
            proxy_pass http://sendgrid_global;
        }
    }

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name pinned.test;
        location /v3/marketing/integrations {
            sendgrid_integrations on;
            proxy_pass http://sendgrid_eu;
        }
    }

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name elsewhere.test;
        location /v3/marketing/integrations {
            sendgrid_integrations on;
            proxy_pass http://sendgrid_shadow;
        }
    }
CONF

$t->start($conf, mocks => ['global', 'eu', 'shadow']);


# -- helpers ----------------------------------------------------------------

my $id = 0;

# A request to a server; X-Test tags it in the access log.
sub send_to {
    my ($host, $method, $target, %o) = @_;
    my @h = (Host => $host, 'X-Test' => 'case-' . ++$id,
             'Authorization' => 'Bearer client-own-token',
             @{$o{headers} // []});
    push @h, 'Content-Type' => 'application/json' if defined $o{body};
    return $t->request($method, $target, headers => \@h, body => $o{body},
                       chunked => $o{chunked}, http => $o{http});
}

# Two tests on a request the side service got: no key, in any header or in
# the body.
sub no_key_material {
    my ($req, $name) = @_;
    my $text = join("\n", map { "$_->[0]: $_->[1]" } @{$req->{headers}})
               . "\n" . $req->{body};
    my @found = grep { index($text, $key{$_}) >= 0 } sort keys %key;
    is_deeply(\@found, [], "$name: no key in what the side service got");
    is_deeply([ grep { /^Bearer SG\./ } header_values($req, 'Authorization') ],
              [], "$name: no gateway Authorization there");
}

# The side service's requests, waiting up to 5 seconds for n of them
# (post_action and mirrors may come after the answer).
sub side_requests {
    my ($n) = @_;
    my @seen;
    for (1 .. 200) {
        push @seen, $t->upstream('shadow');
        last if @seen >= $n;
        select undef, undef, undef, 0.025;
    }
    return @seen;
}

# The captures of re in the error log, waiting up to 5 seconds for it:
# lines of the log phase may be written after the answer.
sub logged {
    my ($re) = @_;
    for (1 .. 200) {
        my @m = $t->error_log =~ $re;
        return @m if @m;
        select undef, undef, undef, 0.025;
    }
    return ();
}

# What the SendGrid mock of region got: one request with exactly the key
# and on-behalf-of that the rules choose.
sub sendgrid_got {
    my ($region, $which, $obo, $name) = @_;
    my $u = $t->forwarded_once($region, $name);
    is_deeply([ header_values($u, 'Authorization') ], ["Bearer $key{$which}"],
              "$name: SendGrid got the $which key, once");
    is_deeply([ header_values($u, 'on-behalf-of') ],
              defined $obo ? [$obo] : [],
              "$name: on-behalf-of " . ($obo // 'none'));
    return $u;
}


# -- subrequests and redirects ---------------------------------------------

{
    my $r = send_to('mirror.test', POST => $C, body => $POST);
    is($r->{status}, 201, 'mirror: the client gets SendGrid\'s answer');
    my @side = side_requests(1);
    sendgrid_got('global', 'global', undef, 'mirror');
    is(scalar @side, 1, 'mirror: the shadow got its copy');
    is($side[0]{body}, $POST, 'mirror: the copy has the body') if @side;
    no_key_material($_, 'mirror') for @side;

    $r = send_to('mirror.test', GET => "$C/abc",
                 headers => ['on-behalf-of' => 'team-m']);
    @side = side_requests(1);
    sendgrid_got('global', 'global', 'team-m', 'mirror, a subuser');
    is(scalar @side, 1, 'mirror, a subuser: the shadow got its copy');
    no_key_material($_, 'mirror, a subuser') for @side;
    is_deeply([ map { header_values($_, 'on-behalf-of') } @side ], [],
              'mirror, a subuser: no on-behalf-of in the copy');
}

# the fallback answers with its own status (the side service's 200 or
# 201), or with the 502 that error_page keeps
for my $case ([ 'fallback.test', undef, 'error_page 502 = @fallback' ],
              [ 'fallback-uri.test', 502, 'error_page 502 /fallback' ])
{
    my ($host, $keep, $what) = @$case;
    for my $req ([ GET => "$C/abc", 200 ], [ POST => $C, 201, body => $POST ])
    {
        my ($method, $target, $own, %o) = @$req;
        my $status = $keep // $own;
        my $name = "$what, $method";
        my $r = send_to($host, $method, $target, %o);
        is($r->{status}, $status, "$name: the fallback answers");
        my @side = side_requests(1);
        is(scalar @side, 1, "$name: the side service got the request");
        no_key_material($_, $name) for @side;
        $t->nothing_upstream("$name: SendGrid");
    }
}

{
    my $r = send_to('postaction.test', GET => "$C/abc");
    is($r->{status}, 200, 'post_action: the client gets SendGrid\'s answer');
    my @side = side_requests(1);
    sendgrid_got('global', 'global', undef, 'post_action');
    is(scalar @side, 1, 'post_action: the side service got the request');
    no_key_material($_, 'post_action') for @side;
}

{
    $t->upstream_response('global', status => 200,
                          headers => [['X-Accel-Redirect', '/accel/target']],
                          body => 'redirected');
    my $r = send_to('accel.test', GET => "$C/abc");
    $t->upstream_response('global');
    is($r->{status}, 200, 'X-Accel-Redirect: answered by the side service');
    my @side = side_requests(1);
    sendgrid_got('global', 'global', undef, 'X-Accel-Redirect');
    is(scalar @side, 1, 'X-Accel-Redirect: the side service got it');
    is($side[0]{target}, '/accel/target', 'X-Accel-Redirect: its target')
        if @side;
    no_key_material($_, 'X-Accel-Redirect') for @side;
}

for my $case ([ 'ssi.test', 'SSI include virtual',
                '{"a":"<!--# include virtual="/part" -->"}' ],
              [ 'addition.test', 'add_before_body', '{"a":1}' ])
{
    my ($host, $what, $body) = @$case;
    $t->upstream_response('global', status => 200,
                          headers => [['Content-Type', 'application/json']],
                          body => $body);
    my $r = send_to($host, GET => "$C/abc");
    $t->upstream_response('global');
    is($r->{status}, 200, "$what: answered");
    like($r->{body}, qr/"integration_id":"5a1234"/,
         "$what: the subrequest's answer is in the response");
    my @side = side_requests(1);
    sendgrid_got('global', 'global', undef, $what);
    is(scalar @side, 1, "$what: the side service got the subrequest");
    no_key_material($_, $what) for @side;
}

{
    my $r = send_to('auth.test', POST => $C, body => $POST,
                    headers => ['on-behalf-of' => 'team-a']);
    is($r->{status}, 201, 'auth_request: allowed, forwarded');
    my @side = side_requests(1);
    sendgrid_got('global', 'global', 'team-a', 'auth_request');
    is(scalar @side, 1, 'auth_request: the auth service was asked');
    no_key_material($_, 'auth_request') for @side;
    is_deeply([ map { header_values($_, 'Authorization') } @side ],
              ['Bearer client-own-token'],
              'auth_request: the auth service sees the client\'s own '
              . 'credential, which is what it is for');
}

{
    # the first slice is the main request; the next one is a subrequest
    # into the gateway location, which forwards only the client's own
    $t->upstream_response('global', status => 206,
                          headers => [['Content-Range', 'bytes 0-15/40'],
                                      ['Content-Type', 'application/json']],
                          body => '{"result":[],"x"');
    my $r = send_to('slice.test', GET => $C);
    $t->upstream_response('global');
    my @u = $t->upstream('global');
    is(scalar @u, 2, 'slice: the main request and one slice went upstream');
    is_deeply([ map { [ header_values($_, 'Range'),
                        header_values($_, 'Authorization') ] } @u ],
              [ [ 'bytes=0-15', "Bearer $key{global}" ], [ 'bytes=16-31' ] ],
              'slice: the key in the main request only');
    $t->nothing_upstream('slice: nothing elsewhere');
}

{
    my $r = send_to('tryfiles.test', GET => "$C/abc");
    is($r->{status}, 200, 'try_files: answered by the named location');
    my @side = side_requests(1);
    is(scalar @side, 1, 'try_files: the side service got the request');
    no_key_material($_, 'try_files') for @side;
    $t->nothing_upstream('try_files: SendGrid');
}

{
    my $r = send_to('localhost', GET => '/page');
    is($r->{status}, 200, 'a page including the gateway: answered');
    like($r->{body}, qr/resource not found/,
         'a page including the gateway: the subrequest is refused');
    $t->nothing_upstream('a subrequest into the gateway location');
}


# -- the key goes where the rules say, or nowhere --------------------------

{
    my $r = send_to('proxyset.test', GET => "$C/abc",
                    headers => ['on-behalf-of' => 'team-p']);
    is($r->{status}, 200, 'proxy_set_header: forwarded');
    my $u = sendgrid_got('global', 'global', 'team-p', 'proxy_set_header');
    is_deeply([ header_pairs($u, 'X-SG-Elas-ACL') ], [],
              'proxy_set_header: no configured x-sg-elas-acl');
    is_deeply([ header_values($u, 'X-Kept') ], ['kept'],
              'proxy_set_header: the other configured headers pass');
}

{
    my $r = send_to('pinned.test', GET => "$C/abc");
    $t->is_refused($r, 500, '{"errors":[{"message":"Internal Server Error",'
                            . '"field":null}]}',
                   'the global key to the EU upstream');
    like($t->error_log, qr/the request for region global goes to upstream "sendgrid_eu", not to "sendgrid_global"/,
         'the global key to the EU upstream: the log says why');

    $r = send_to('elsewhere.test', GET => "$C/abc");
    is($r->{status}, 200, 'an upstream no sendgrid_upstream_host names: '
                          . 'answered');
    my @side = side_requests(1);
    is(scalar @side, 1, 'that upstream got the request');
    no_key_material($_, 'an upstream no sendgrid_upstream_host names')
        for @side;
    ok(logged(qr/no key was sent: proxy_pass must go to the upstream/),
       'that upstream: the log says no key was sent');
}


# -- variables read before the gateway's handler ---------------------------

{
    # the server's table would give acme its own key in the EU; the
    # location takes the subuser from a trusted header instead
    my $r = send_to('early.test', GET => "$C/abc",
                    headers => ['on-behalf-of' => 'acme']);
    is($r->{status}, 200, 'early read: not fixed by the server-level if');
    is($r->{headers}{'x-early'}[0], '[][][]',
       'early read: the variables are empty before the handler');
    sendgrid_got('global', 'global', undef,
                 'early read, the client\'s on-behalf-of');

    $r = send_to('early.test', GET => "$C/abc",
                 headers => ['on-behalf-of' => 'other', 'X-Trusted' => 'acme']);
    is($r->{status}, 200, 'early read, the trusted header: forwarded');
    sendgrid_got('eu', 'acme', undef, 'early read, the trusted header');
}


# -- header names with underscores -----------------------------------------

{
    my $r = send_to('underscores.test', GET => "$C/abc",
                    headers => ['on_behalf_of' => 'team-u',
                                'x_sg_elas_acl' => 'acl',
                                'X-Kept_Header' => 'k']);
    is($r->{status}, 200, 'underscores: forwarded');
    my $u = sendgrid_got('global', 'global', 'team-u', 'underscores');
    is_deeply([ map { $_->[0] } grep { $_->[0] =~ /behalf|elas|authoriz/i }
                @{$u->{headers}} ],
              ['Authorization', 'on-behalf-of'],
              'underscores: only the gateway\'s own spellings upstream');
    is_deeply([ header_values($u, 'X-Kept_Header') ], ['k'],
              'underscores: other underscored headers pass');

    $r = send_to('underscores.test', GET => "$C/abc",
                 headers => ['on-behalf-of' => 'a', 'on_behalf_of' => 'b']);
    $t->is_refused($r, 400, '{"errors":[{"message":"on-behalf-of must be '
                            . 'sent at most once","field":null}]}',
                   'underscores: on-behalf-of and on_behalf_of');

    for my $name ('X_HTTP_Method_Override', 'x_http_method',
                  'X_Method-Override')
    {
        $r = send_to('underscores.test', GET => $C,
                     headers => [$name => 'DELETE']);
        $t->is_refused($r, 400, '{"errors":[{"message":"method override '
                                . 'headers are not allowed","field":null}]}',
                       "underscores: $name");
    }
}


# -- another module reads the body, or writes the headers ------------------

SKIP: {
    skip "lua: $t->{lua_missing}", 1 unless $lua;

    my $large = create_body(write_key => 'wk-compose-2',
                            label => '"' . ('l' x 3000) . '"');
    my $large_bad = $large =~ s/"Segment"/"Other"/r;

    for my $host ('lua-body.test', 'lua-file.test') {
        for my $case ([ 'valid', $POST, 201 ], [ 'valid, large', $large, 201 ],
                      [ 'invalid', $INVALID, 400 ],
                      [ 'invalid, large', $large_bad, 400 ],
                      [ 'not JSON', '{"a":', 400 ])
        {
            my ($what, $body, $status) = @$case;
            my $name = "$host, $what";

            # the same request without lua, for the answer to compare
            my $plain = send_to('localhost', POST => $C, body => $body);
            $t->upstream('global');

            for my $chunked (0, 1) {
                my $r = send_to($host, POST => $C, body => $body,
                                chunked => $chunked,
                                http => $chunked ? '1.1' : '1.0');
                my $n = $name . ($chunked ? ', chunked' : '');
                is($r->{status}, $status, "$n: status");
                is($r->{body}, $plain->{body}, "$n: the same answer as "
                                               . 'without lua');
                if ($status == 201) {
                    my $u = sendgrid_got('global', 'global', undef, $n);
                    is($u->{body}, $body, "$n: the body byte for byte");
                } else {
                    $t->nothing_upstream($n);
                }
            }
        }
    }

    my @many = map { ("X-Many-$_" => "v$_") } 1 .. 25;
    my $r = send_to('lua-headers.test', GET => "$C/abc",
                    headers => [@many[0 .. 19], 'on-behalf-of' => 'team-l',
                                @many[20 .. 49]]);
    is($r->{status}, 200, 'lua pushes headers after the gateway: answered');
    is($r->{headers}{'x-lua-saw'}[0], 'nil nil',
       'lua after the gateway sees no Authorization or on-behalf-of');
    my $u = sendgrid_got('global', 'global', 'team-l', 'lua headers');
    is(scalar(grep { $_->[0] =~ /^X-Many-/ } @{$u->{headers}}), 25,
       'lua headers: the client\'s other headers all went upstream');
    my ($saw) = logged(qr/(lua saw: [^\n]*)/);
    like($saw // '', qr/ x-pushed-45=45 .*x-body-filter=pushed|x-body-filter=pushed.* x-pushed-45=45 /,
         'lua headers: 46 headers pushed after the list was rebuilt');
}


# -- what the variables and the logs show ----------------------------------

$t->stop;

my $vars = SGTest::slurp($t->dir . '/logs/vars.log');
is_deeply([ grep { /client-own-token/ } grep { !/^case-\d+ \[[^]]*\] \[[^]]*\] \[-\]/ }
            split /\n/, $vars ], [],
          'access log: the client\'s credential is gone once the gateway ran');
# $http_on_behalf_of keeps the value nginx gave it when the gateway read
# the subuser through it (nginx caches it)
like($vars, qr/^case-\d+ \[-\] \[team-m\] \[team-m\] \[global\] \[sendgrid_global\] /m,
     'access log: the resolved variables, no client credential');
# (nginx writes a '"' in an access log as \x22)
like($vars =~ s/\\x22/"/gr,
     qr/^case-\d+ .* \[\{"source":"gateway","status":502,.*"message":"the SendGrid API could not be reached"\}\]\}\] /m,
     'access log: $sendgrid_error after an error_page redirect');
like($t->error_log, qr/sendgrid_integrations: \{"source":"gateway","status":502,/,
     'the 502 behind error_page is logged');
if ($lua) {
    like($vars, qr/ \[45\]$/m, 'access log: a header lua pushed is read');
}

$t->done_testing;
