# Request body validation through nginx: every case of the body table
# (t/lib/SGBodyCases.pm) sent as its POST or PATCH, to a server with
# sendgrid_strict on for the strict cases.  Each case checks the status,
# the exact error body, its Content-Type, and whether the upstream saw the
# request and its bytes.

use strict;
use warnings;

use Test::More;
use SGTest qw(body_error is_bytes);
use SGBodyCases;

my $t = SGBodyCases::gateway();

my @cases = SGBodyCases::cases();

for my $c (@cases) {
    my $name = $c->{name};
    my $r = SGBodyCases::request($t, $c);

    if (defined $c->{message}) {
        $t->is_refused($r, 400, body_error($c->{message}), $name);
        next;
    }

    is($r->{status}, 200, "$name: forwarded")
        or diag(substr($r->{body}, 0, 300));
    is($r->{body}, $SGBodyCases::MOCK_BODY, "$name: the upstream's answer");
    my $u = $t->forwarded_once('global', $name);
    is_bytes($u->{body}, $c->{body} // '', "$name: body byte for byte");
    is("$u->{method} $u->{target}",
       $c->{op} eq 'update' ? 'PATCH /v3/marketing/integrations/5a1234'
                            : 'POST /v3/marketing/integrations',
       "$name: method and target");
}

is(scalar $t->upstream('eu'), 0, 'the EU upstream saw nothing');

note(scalar(@cases) . ' body cases');
cmp_ok(scalar @cases, '>=', 300, 'at least 300 body cases');
cmp_ok(scalar(grep { $_->{strict} } @cases), '>=', 20,
       'at least 20 of them strict');

$t->done_testing;
