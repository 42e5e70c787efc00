# The subuser table at its edges: exact names of any length (there is no
# hash to size), a thousand names found each by its bytes, names that
# differ only in letter case, and a regex that fails to run, which answers
# 500 rather than giving the request another entry's key or the default.

use strict;
use warnings;

use Test::More;
use SGTest qw(header_values is_sendgrid_error);

my $t = SGTest->new;

my %key = (global => 'SG.subusers-parent.0000aaaa',
           eu => 'SG.subusers-eu.1111bbbb',
           long => 'SG.subusers-long-name.2222cccc');
$t->key_file("$_.key", "$key{$_}\n") for sort keys %key;

# names of 47 bytes (once more than a 64-byte hash bucket took), 300 and
# 4000 bytes; a thousand short ones, every tenth in the EU
my $n47 = 'n' x 46 . '7';
my $n300 = join '', map { chr(ord('a') + $_ % 26) } 1 .. 300;
my $n4000 = 'L' . ('o' x 3998) . 'g';
my @many = map { sprintf 'team-%04d', $_ } 1 .. 1000;

my $table = join '', map { "sendgrid_subuser_region $_ "
                           . (/(\d+)$/ && $1 % 10 == 0 ? 'eu' : 'global')
                           . ";\n" } reverse @many;
$table .= "sendgrid_subuser_region $n47 eu;\n"
        . "sendgrid_subuser_region $n300 global %%DIR%%/long.key;\n"
        . "sendgrid_subuser_region $n4000 eu;\n"
        . "sendgrid_subuser_region Acme eu;\n"
        . "sendgrid_subuser_region acme global;\n"
        . "sendgrid_subuser_region ~^(a+)+\$ eu;\n";

my $conf = <<"CONF";
    large_client_header_buffers 4 16k;
    sendgrid_api_key_file %%DIR%%/global.key;
    sendgrid_api_key_file %%DIR%%/eu.key eu;
$table
CONF
$t->start($conf . SGTest::gateway_server('localhost'));

my $C = '/v3/marketing/integrations';

sub forwarded {
    my ($subuser, $region, $key, $obo, $name) = @_;
    my $r = $t->request(GET => "$C/abc", headers => ['on-behalf-of' => $subuser]);
    is($r->{status}, 200, "$name: forwarded");
    my $u = $t->forwarded_once($region, $name);
    is_deeply([ header_values($u, 'Authorization') ], ["Bearer $key{$key}"],
              "$name: the $key key");
    is_deeply([ header_values($u, 'on-behalf-of') ], defined $obo ? [$obo] : [],
              "$name: on-behalf-of");
}

forwarded($n47, 'eu', 'eu', $n47, 'a 47-byte name');
forwarded($n300, 'global', 'long', undef, 'a 300-byte name with its own key');
forwarded($n4000, 'eu', 'eu', $n4000, 'a 4000-byte name');
forwarded(substr($n4000, 0, -1), 'global', 'global', substr($n4000, 0, -1),
          'all of a long name but its last byte');
forwarded("${n47}x", 'global', 'global', "${n47}x", 'a long name and a byte more');

# every name would take long on a busy machine: the first and last ones
# and every 50th with its neighbours cover the search's edges
my @wrong;
for my $i (grep { $_ < 3 || $_ > 996 || ($_ + 1) % 50 <= 1 || ($_ + 2) % 50 == 0 }
           0 .. $#many)
{
    my $name = $many[$i];
    my $want = ($i + 1) % 10 == 0 ? 'eu' : 'global';
    my $r = $t->request(GET => "$C/abc", headers => ['on-behalf-of' => $name]);
    my @u = $t->upstream($want);
    push @wrong, $name
        unless $r->{status} == 200 && @u == 1
               && (header_values($u[0], 'on-behalf-of'))[0] eq $name;
}
is_deeply(\@wrong, [], 'in a thousand names, each found in its region');
$t->nothing_upstream('a thousand names');

forwarded('Acme', 'eu', 'eu', 'Acme', 'names differing in letter case: Acme');
forwarded('acme', 'global', 'global', 'acme',
          'names differing in letter case: acme');
forwarded('ACME', 'global', 'global', 'ACME',
          'names differing in letter case: ACME is neither');
forwarded('aaaa', 'eu', 'eu', 'aaaa', 'the regex matches');

# catastrophic backtracking: PCRE2 gives up with an error, not "no match"
{
    my $r = $t->request(GET => "$C/abc",
                        headers => ['on-behalf-of' => ('a' x 40) . 'b']);
    is_sendgrid_error($r, 500, 'a regex that fails to run', count => 1,
                      message => qr/^internal error$/);
    $t->nothing_upstream('a regex that fails to run');
    like($t->error_log,
         qr/\[error\] .* sendgrid_integrations: matching the subuser against "\^\(a\+\)\+\$" failed: -\d+/,
         'a regex that fails to run: logged');
}

$t->done_testing;
